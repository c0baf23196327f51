"""Kivy screens: one ``.kv`` layout per screen and a thin Python class in :mod:`.classes`."""
