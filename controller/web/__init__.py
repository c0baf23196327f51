"""The operator console: web pages, REST API and metrics served inside ``kiosk-controller``."""
