"""Serial device drivers for the kiosk: each opens its port only through ``serial.serial_for_url``."""
