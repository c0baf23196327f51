"""What a resident would see go wrong on one rendered screen: a widget outside the window or cut
by its scroll view, text larger than its widget, siblings that overlap, a screen that needs
scrolling, and a text/background pair under 4.5:1 contrast (disabled and greyed states included).

Runs inside the kiosk app's process (the UI harness calls :func:`problems` on the current screen,
after the layout has settled). Colours come from the widgets' own properties: a Label's text
colour (its ``disabled_color`` when disabled) over its Button background, or over the nearest
ancestor that declares ``bg_rgba`` (an overlay), else over the screen background.
"""

from __future__ import annotations

from kiosk_ui import theme

MIN_CONTRAST = 4.5
SLACK = 1.0  # px: rounding in layouts


def _visible(w) -> bool:
    return w.width > 0.5 and w.height > 0.5 and getattr(w, "opacity", 1) > 0.01


def _box(w) -> tuple[float, float, float, float]:
    x0, y0 = w.to_window(w.x, w.y)
    x1, y1 = w.to_window(w.right, w.top)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _blend(fg, bg) -> tuple[float, float, float, float]:
    a = fg[3] if len(fg) > 3 else 1.0
    return (*(f * a + b * (1 - a) for f, b in zip(fg[:3], bg[:3], strict=True)), 1.0)


def _name(w) -> str:
    text = getattr(w, "text", "")
    label = getattr(w, "kiosk_name", "") or (text[:24] if isinstance(text, str) else "")
    return f"{type(w).__name__}({label!r})"


def _background(w) -> tuple:
    from kivy.uix.button import Button

    node = w
    while node is not None and node is not node.parent:
        if isinstance(node, Button):
            bg = node.background_color
            if node.disabled and node.background_disabled_normal:
                return (0.5, 0.5, 0.5, 1)  # Kivy's grey image: never what the kiosk means to show
            return _blend(bg, theme.BG)
        declared = getattr(node, "bg_rgba", None)
        if declared:
            return _blend(declared, theme.BG)
        node = node.parent
    return theme.BG


def _in_scroll_view(w, screen) -> bool:
    from kivy.uix.scrollview import ScrollView

    node = w.parent
    while node is not None and node is not screen:
        if isinstance(node, ScrollView):
            return True
        node = node.parent
    return False


def problems(screen, window_size: tuple[float, float], *, allow_scroll: bool = False) -> list[str]:
    from kivy.uix.label import Label
    from kivy.uix.layout import Layout
    from kivy.uix.scrollview import ScrollView

    width, height = window_size
    found: list[str] = []
    hidden: set[int] = set()
    for w in screen.walk(restrict=True):
        if id(w.parent) in hidden or not _visible(w):
            hidden.add(id(w))
            continue
        if w is screen:
            continue
        x0, y0, x1, y1 = _box(w)
        scrolled = allow_scroll and _in_scroll_view(w, screen)
        if not scrolled and isinstance(w.parent, Layout) and w.parent is not screen:
            px0, py0, px1, py1 = _box(w.parent)
            if x0 < px0 - SLACK or y0 < py0 - SLACK or x1 > px1 + SLACK or y1 > py1 + SLACK:
                found.append(f"spills out of its parent: {_name(w)} by "
                             f"{round(max(px0 - x0, py0 - y0, x1 - px1, y1 - py1))} px")
        if scrolled:
            pass
        elif x0 < -SLACK or y0 < -SLACK or x1 > width + SLACK or y1 > height + SLACK:
            found.append(f"outside the window: {_name(w)} at {[round(v) for v in (x0, y0, x1, y1)]}")
        node = w.parent
        while not scrolled and node is not None and node is not screen:
            if isinstance(node, ScrollView):
                sx0, sy0, sx1, sy1 = _box(node)
                if y0 < sy0 - SLACK or y1 > sy1 + SLACK or x0 < sx0 - SLACK or x1 > sx1 + SLACK:
                    found.append(f"cut by its scroll view: {_name(w)} by {round(max(sy0 - y0, y1 - sy1, 0))} px")
                break
            node = node.parent
        if isinstance(w, ScrollView) and w.children and not allow_scroll:
            inner = w.children[0]
            if inner.height > w.height + SLACK:
                found.append(f"needs scrolling: {round(inner.height - w.height)} px more than fits")
        if isinstance(w, Label) and w.text:
            tw, th = w.texture_size
            if tw > w.width + SLACK or th > w.height + SLACK:
                found.append(f"text larger than its widget: {_name(w)} text {round(tw)}x{round(th)} "
                             f"in {round(w.width)}x{round(w.height)}")
            fg = w.disabled_color if w.disabled else w.color
            bg = _background(w)
            ratio = theme.contrast(_blend(fg, bg), bg)
            if ratio < MIN_CONTRAST:
                found.append(f"contrast {ratio:.1f}:1: {_name(w)}{' (disabled)' if w.disabled else ''}")
        kids = [c for c in w.children if _visible(c) and not getattr(c, "overlay", False)]
        for i, a in enumerate(kids):
            ax0, ay0, ax1, ay1 = _box(a)
            for b in kids[i + 1:]:
                bx0, by0, bx1, by1 = _box(b)
                dx, dy = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
                if dx > SLACK and dy > SLACK:
                    found.append(f"overlap: {_name(a)} and {_name(b)} by {round(dx)}x{round(dy)} px")
    return found
