"""Kivy screens: one ``.kv`` layout and one thin Python class per screen."""
