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
# Greyed (disabled) buttons: plainly grey, yet their words stay readable (Kivy's default greys
# the text to 30 % white over a grey image: about 1.6:1).
DISABLED = (0.78, 0.80, 0.83, 1)
DISABLED_FG = (0.22, 0.24, 0.27, 1)
OVERLAY = (0.02, 0.10, 0.22, 0.96)  # the countdown's veil over the screen
PAIRS = {"text": (FG, BG), "accent": (ACCENT_FG, ACCENT), "button": (BUTTON_FG, BUTTON), "warn": (WARN_FG, WARN),
         "disabled": (DISABLED_FG, DISABLED), "overlay": (FG, OVERLAY),
         "question": (ACCENT, BG)}

ELDERLY_SCALE = 1.4
BUTTON_HEIGHT = 84  # dp; at least 60 even before the elderly scale
ELDERLY_BUTTON_HEIGHT = 96  # dp: larger, yet the whole menu (four rows of two) fits without scrolling


ACTION_HEIGHT = 84  # dp: the bottom row (back, finish, print) in both modes
MIN_TOUCH = 60  # dp: on a small panel a screen's buttons shrink to fit, never below this
BAR_BUTTON_HEIGHT = 72  # dp: the top bar's buttons (language, elderly mode, home)
ELDERLY_BAR_BUTTON_HEIGHT = 84
BAR_PADDING = 6  # dp around the top bar's buttons: they sit inside the window, never at its edge


def hex_rgb(rgba) -> str:
    """A colour for Kivy markup (``[color=...]``)."""
    return "".join(f"{round(c * 255):02x}" for c in rgba[:3])


def button_height(scale: float) -> float:
    return ELDERLY_BUTTON_HEIGHT if scale > 1 else BUTTON_HEIGHT


def bar_height(scale: float) -> float:
    return (ELDERLY_BAR_BUTTON_HEIGHT if scale > 1 else BAR_BUTTON_HEIGHT) + 2 * BAR_PADDING
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
