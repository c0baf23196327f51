"""Colours and sizes, shared by every ``.kv`` (contrast checked by the tests: at least 4.5:1)."""

from __future__ import annotations

BG = (0.04, 0.23, 0.45, 1)  # deep blue
FG = (1, 1, 1, 1)
ACCENT = (1, 0.78, 0.2, 1)  # the one main action per screen
ACCENT_FG = (0.05, 0.05, 0.05, 1)
BUTTON = (0.93, 0.95, 0.98, 1)
BUTTON_FG = (0.04, 0.16, 0.32, 1)
WARN = (0.75, 0.1, 0.1, 1)
WARN_FG = (1, 1, 1, 1)
PAIRS = {"text": (FG, BG), "accent": (ACCENT_FG, ACCENT), "button": (BUTTON_FG, BUTTON), "warn": (WARN_FG, WARN)}

ELDERLY_SCALE = 1.4
BUTTON_HEIGHT = 84  # dp; at least 60 even before the elderly scale
ELDERLY_BUTTON_HEIGHT = 96  # dp: larger, yet the whole menu (four rows of two) fits without scrolling


def button_height(scale: float) -> float:
    return ELDERLY_BUTTON_HEIGHT if scale > 1 else BUTTON_HEIGHT
SMALLEST_TEXT = 20  # sp; the smallest text used anywhere
LARGEST_TEXT = 48


def _lin(c: float) -> float:
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgba) -> float:
    r, g, b = (_lin(x) for x in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)
