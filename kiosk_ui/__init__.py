"""The kiosk: Kivy touch app for residents and the kiosk agent that links it to the fleet."""
