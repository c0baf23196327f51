"""Faithful simulators of the kiosk's serial devices, served on real pseudo-terminals."""
