"""Kiosk agent: the kiosk's side of the fleet link (runs inside the app and headless)."""
