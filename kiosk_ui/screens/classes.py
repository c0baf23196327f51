"""The screens' Python side: each ``refresh(app)`` shows the view-model's state, nothing more.

Buttons call ``app.act(name, ...)`` (one method, no logic in kv). Layout lives in the ``.kv``
files next to this module, one per screen.
"""

from __future__ import annotations

import time
from pathlib import Path

from kivy.factory import Factory
from kivy.lang import Builder
from kivy.metrics import dp, sp
from kivy.properties import NumericProperty, StringProperty
from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.screenmanager import Screen
from kivy.utils import escape_markup

from kiosk_ui import theme
from kiosk_ui.i18n import tr
from kiosk_ui.viewmodels import maintenance

_DIR = Path(__file__).parent
SCREENS = ("attract", "menu", "identify", "card_pin", "step", "working", "result", "failed", "print_failed",
           "rating", "done", "out_of_service", "maintenance", "pin")


class TopBar(BoxLayout):
    pass


def _scale() -> float:
    from kivy.app import App

    app = App.get_running_app()
    return getattr(app, "scale", 1.0) if app else 1.0


FIT_FONT_FLOOR = 0.72  # a shrunk button's words never drop below this share of their size


class KioskScreen(Screen):
    """Base screen. Dynamic widgets come from per-screen pools and are reused on every refresh:
    Kivy widgets bind to global objects (metrics, app properties) that would keep discarded
    widgets, and their textures, alive for the life of the kiosk.

    No screen scrolls: the body lies in a frame, and when it is taller than the frame (a small
    panel, elderly mode, a long language) :meth:`_fit` shrinks the body's buttons, and their
    words with them, until it fits, never below ``theme.MIN_TOUCH``."""

    def refresh(self, app) -> None:
        pass

    def on_kv_post(self, base_widget) -> None:
        self._flex: list = []
        if "frame" in self.ids:
            self.ids.body.bind(minimum_height=self._fit)
            self.ids.frame.bind(height=self._fit)

    def _fit(self, *_args) -> None:
        flex = [w for w in self._flex if w.parent is not None]
        over = self.ids.body.minimum_height - self.ids.frame.height
        ideal = dp(theme.button_height(_scale()))
        at_min = bool(flex) and flex[0].height <= dp(theme.MIN_TOUCH) + 0.5
        if not flex or (over > 1 and at_min) or (over < -1 and self._text_ratio < 1):
            # Buttons at their smallest (or none): the body's words shrink, within FIT_FONT_FLOOR
            # (and grow back first when room comes back).
            self._fit_text(over)
            return
        current = flex[0].height
        # Buttons side by side share a row: shrinking each row by over/rows makes the body fit.
        rows = len({round(w.y) for w in flex if not isinstance(w.parent, BoxLayout)
                    or w.parent.orientation == "vertical" or w.parent is self.ids.body}) or 1
        target = max(dp(theme.MIN_TOUCH), min(ideal, current - over / rows))
        if abs(target - current) < 0.5:
            return
        self.fits = getattr(self, "fits", 0) + 1  # adjustments so far (the layout test reports them)
        ratio = max(FIT_FONT_FLOOR, target / ideal)
        for w in flex:
            w.height = target
            base = getattr(w, "_base_font", None)
            if base:
                w.font_size = base * ratio

    _text_ratio = 1.0

    def _fit_text(self, over: float) -> None:
        texts = [w for w in self.__dict__.get("_flex_text", []) if w.parent is not None]
        height = sum(w.height for w in texts)
        if not texts or height <= 0 or abs(over) <= 1:
            return
        # A little more than the share: line heights do not follow font sizes exactly.
        ratio = min(1.0, max(FIT_FONT_FLOOR, self._text_ratio * (height - over) / height - (0.01 if over > 0 else 0)))
        if abs(ratio - self._text_ratio) < 0.01:
            return
        self._text_ratio = ratio
        for w in texts:
            w.font_size = w._base_font * ratio
        # Words wrap in steps: look again once the labels have new sizes, until it fits or the
        # floor is reached (each pass changes the ratio, so this ends).
        from kivy.clock import Clock

        Clock.schedule_once(self._fit, 0)

    def _clear(self):
        self.ids.body.clear_widgets()
        self.ids.actions.clear_widgets()
        self._cursor: dict[str, int] = {}
        self._flex = []
        self._flex_text = []
        self._text_ratio = 1.0

    def _bucket(self, name: str) -> list:
        """A list kept on the instance under ``name`` (Kivy screens have no __init__ of ours)."""
        items = getattr(self, name, None)
        if items is None:
            items = []
            setattr(self, name, items)
        return items

    def _take(self, kind: str, factory):
        # Plain dicts on the instance (Kivy screens have no __init__ of ours to create them in).
        pools: dict[str, list] = getattr(self, "_pools", None) or {}
        cursor: dict[str, int] = getattr(self, "_cursor", None) or {}
        self._pools, self._cursor = pools, cursor
        pool = pools.setdefault(kind, [])
        i = cursor.get(kind, 0)
        cursor[kind] = i + 1
        if i == len(pool):
            pool.append(factory())
        w = pool[i]
        if w.parent is not None:
            w.parent.remove_widget(w)
        return w

    def _text(self, text: str, big: bool = False, halign: str = "center", where: str = "body", into=None):
        k = _scale()
        w = self._take("title" if big else "label", Factory.DynTitle if big else Factory.DynBody)
        w.text, w.halign, w.font_size = text, halign, sp(40 if big else 26) * k
        w._base_font = w.font_size
        (into if into is not None else self.ids[where]).add_widget(w)
        if where == "body":
            self._bucket("_flex_text").append(w)
        return w

    def _button(self, text: str, on_press, *, main: bool = False, where: str = "body", name: str = "",
                into=None, disabled: bool = False, font: float = 26):
        k = _scale()
        b = self._take("main" if main else "button", Factory.DynMainButton if main else Factory.DynButton)
        old = getattr(b, "_handler", None)
        if old is not None:
            b.unbind(on_release=old)
        b._handler = lambda *_: on_press()
        b.bind(on_release=b._handler)
        b.text, b.disabled, b.font_size = text, disabled, sp(font) * k
        b._base_font = b.font_size
        b.height = dp(theme.button_height(k) if where == "body" else theme.ACTION_HEIGHT)
        b.background_color = theme.DISABLED if disabled else theme.ACCENT if main else theme.BUTTON
        b.color = theme.ACCENT_FG if main else theme.BUTTON_FG
        b.kiosk_name = name  # the UI tests find buttons by this
        (into if into is not None else self.ids[where]).add_widget(b)
        if where == "body":
            self._bucket("_flex").append(b)
        return b

    def _demo_card_remove(self, app) -> None:
        """Simulated kiosks: "remove card" while a demo card lies on a reader."""
        if app.simulated and app.demo_cards:
            self._button(tr("identify.remove_demo_card", app.vm.language), app.remove_demo_card,
                         name="remove_demo_card")

    def _choose(self, b, on: bool) -> None:
        """Show a chosen option (a rating, a tag) in the accent colour."""
        if on:
            b.background_color, b.color = theme.ACCENT, theme.ACCENT_FG
        else:
            b.color = theme.BUTTON_FG

    def _row(self, into=None):
        row = self._take("row", lambda: BoxLayout(size_hint_y=None, spacing=10))
        row.clear_widgets()
        row.height = dp(theme.button_height(_scale()))
        (into if into is not None else self.ids.body).add_widget(row)
        self._bucket("_flex").append(row)
        return row


class AttractScreen(KioskScreen):
    t_title = StringProperty("")
    t_subtitle = StringProperty("")
    t_touch = StringProperty("")
    t_kiosk = StringProperty("")
    t_clock = StringProperty("")

    def refresh(self, app) -> None:
        lang = app.vm.language
        self.t_title = tr("app.title", lang)
        self.t_subtitle = tr("home.subtitle", lang)
        self.t_touch = tr("home.touch_to_start", lang)
        self.t_kiosk = tr("home.kiosk_id", lang, kiosk_id=app.kiosk_id)
        self.show_clock(app)
        self.ids.start.kiosk_name = "start"
        self._cursor = {}
        self.ids.notices.clear_widgets()
        if app.vm.left_cards:
            # A card left by the resident who just went: said first, in the accent colour, for them
            # and for the next resident; the notices wait until it is taken.
            w = self._text(tr("card_left.detail", lang), where="notices")
            w.kiosk_name, w.color, w.bold = "card_left", theme.ACCENT, True
            return
        for n in app.vm.catalogue.notices[:3]:
            w = self._text("· " + (n["titles"].get(lang) or n["titles"]["zh-CN"]), halign="left", where="notices")
            w.color, w.bold = theme.FG, False

    def on_kv_post(self, base_widget) -> None:
        super().on_kv_post(base_widget)
        from kivy.clock import Clock

        # After the layout pass, never inside it: removing a child while its box lays out breaks Kivy.
        trigger = Clock.create_trigger(self._fit_notices)
        self.ids.notices.bind(height=lambda *_: trigger(), minimum_height=lambda *_: trigger())

    def _fit_notices(self, *_args) -> None:
        """Notices that do not fit the space left are dropped (all of them are in the notices service)."""
        box = self.ids.notices
        while len(box.children) > 1 and box.minimum_height > box.height + 1:
            box.remove_widget(box.children[0])

    def on_touch_down(self, touch):
        """"Touch the screen to start" means any touch: the top bar's buttons keep theirs."""
        if super().on_touch_down(touch):
            return True
        if self.collide_point(*touch.pos):
            from kivy.app import App

            app = App.get_running_app()
            if app is not None:
                app.act("start")
            return True
        return None  # Kivy's "not handled"

    def show_clock(self, app) -> None:
        """The only thing on this screen that changes with time (called on every app tick)."""
        self.t_clock = time.strftime("%Y-%m-%d %H:%M", time.localtime(app.clock()))

    def greet(self) -> None:
        """Someone walked up: make the start button stand out for a moment."""
        from kivy.animation import Animation

        btn = self.ids.start
        Animation.cancel_all(btn)
        (Animation(opacity=0.4, duration=0.3) + Animation(opacity=1.0, duration=0.3)).start(btn)


class MenuScreen(KioskScreen):
    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        items = vm.menu(time.strftime("%H:%M", time.localtime(app.clock())))
        # One title line: offline, the title itself says so, and each greyed service says why on
        # its button; the grid below holds only the services, two per row. Home is in the top bar.
        lines = [tr("menu.title" if vm.online else "menu.offline_title", lang)]
        if vm.message:
            lines.append(tr(vm.message, lang))
        self.ids.title.text = "\n".join(lines)
        for svc, ok in items:
            label = svc.name(lang) + ("" if ok else f"\n({tr('menu.unavailable', lang)})")
            self._button(label, lambda s=svc.id: app.act("choose_service", s), name=f"service:{svc.id}",
                         disabled=not ok)


class IdentifyScreen(KioskScreen):
    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        self.ids.title.text = vm.service.name(lang) if vm.service else ""
        if vm.identity is None:
            self._text(tr(f"identify.{vm.service.identification}", lang), big=True)
            # Until a card is there, say so: "reading" would be untrue with an empty reader.
            self._text(tr(vm.message or "identify.no_card", lang))
            if app.simulated and vm.service.identification != "qr_voucher":
                self._button(tr("identify.demo_card", lang), app.place_demo_card, name="demo_card", where="actions")
            self._demo_card_remove(app)
        else:
            self._text(tr("identify.hello", lang, name=vm.identity.masked_name()), big=True)
            self._text(tr("identify.number", lang, number=vm.identity.masked_number()))
            self._button(tr("identify.confirm", lang), lambda: app.act("confirm_identity"), main=True,
                         where="actions", name="confirm")
            self._demo_card_remove(app)
        self._button(tr("nav.back", lang), lambda: app.act("back"), where="actions", name="back")


class StepScreen(KioskScreen):
    columns = NumericProperty(1)  # a few options in one column, more in two; a keypad in one

    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        step = vm.current_step()
        if step is None:
            return
        self.columns = 1 if len(vm.step_options()) <= 4 and not step.input else 2
        # The title names the service; the question sits under it in the accent colour, so that it
        # does not read as another menu.
        question = step.title.get(lang) or step.title["zh-CN"]
        self.ids.title.text = (f"{escape_markup(vm.service.name(lang))}  [color={theme.hex_rgb(theme.ACCENT)}]"
                               f"{escape_markup(question)}[/color]")
        self.ids.message.text = tr(vm.message, lang) if vm.message else ""
        # A long question may wrap: the title's words shrink with the body's when space runs short.
        title = self.ids.title
        title._base_font = sp(36) * _scale()
        title.font_size = title._base_font
        self._bucket("_flex_text").append(title)
        if step.input:
            # The number on the left, in groups as people read numbers out (138 1234 5678; a hint
            # while empty), the keypad on the right: everything on one screen, nothing moves as
            # the resident types.
            digits = vm.entry
            shown = self._take("shown", lambda: AnchorLayout(anchor_y="center", size_hint_y=None))
            shown.clear_widgets()
            self.ids.body.add_widget(shown)
            self._text(" ".join(filter(None, (digits[:3], digits[3:7], digits[7:]))) or tr("entry.phone_hint", lang),
                       big=True, into=shown)
            pad = self._take("pad", _pad)
            pad.clear_widgets()
            self.ids.body.add_widget(pad)
            _keypad(self, lambda c: app.act("entry_key", c), lang, into=pad)
            if getattr(pad, "_follower", None) is not shown:
                pad.bind(height=shown.setter("height"))  # the number's box as tall as the keypad, shrunk or not
                pad._follower = shown
            shown.height = pad.height
            if step.optional:
                self._button(tr("entry.skip", lang), lambda: app.act("skip_step"), where="actions", name="skip")
        for oid, label in vm.step_options():
            self._button(label, lambda o=oid: app.act("choose_option", o), name=f"option:{oid}")
        self._button(tr("nav.back", lang), lambda: app.act("back"), where="actions", name="back")


class WorkingScreen(KioskScreen):
    def refresh(self, app) -> None:
        self._clear()
        lang = app.vm.language
        key = "print.printing" if app.vm.print_state == "printing" else "working.wait"
        self.ids.title.text = tr(key, lang)


class ResultScreen(KioskScreen):
    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        self.ids.title.text = vm.service.name(lang) if vm.service else ""
        if vm.message:
            self._text(tr(vm.message, lang))
        for i, line in enumerate(app.result_lines()):
            self._text(line, big=(i == 0))
        # Not printed yet: printing is the main action (a ticket is paper), finishing the other one.
        unprinted = bool(vm.service and "receipt" in vm.service.output and vm.print_state == "")
        self._button(tr("nav.finish", lang), lambda: app.act("finish"), main=not unprinted, where="actions",
                     name="finish")
        if unprinted:
            key = "result.print_ticket" if vm.service.id == "queue_ticket" else "result.print"
            self._button(tr(key, lang), lambda: app.act("print_result"), main=True, where="actions", name="print")
        self._demo_card_remove(app)


class FailedScreen(KioskScreen):
    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        self.ids.title.text = tr("error.failed_title", lang)
        self._text(tr(vm.message or "error.bad_request", lang), big=True)
        self._button(tr("nav.back", lang), lambda: app.act("back"), where="actions", name="back")
        self._button(tr("nav.finish", lang), lambda: app.act("finish"), main=True, where="actions", name="finish")


class PrintFailedScreen(KioskScreen):
    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        self.ids.title.text = tr(vm.message or "print.failed", lang)
        self._text(tr("print.options", lang, window=tr("print.window", lang)))
        self._button(tr("print.show_on_screen", lang), lambda: app.act("show_on_screen"), main=True,
                     where="actions", name="show_on_screen")
        self._button(tr("nav.finish", lang), lambda: app.act("finish"), where="actions", name="finish")


class RatingScreen(KioskScreen):
    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        self.ids.title.text = (vm.service.name(lang) + " · " if vm.service else "") + tr("rating.title", lang)
        # 1-5, each with its word; the tags two per row below: everything on one screen.
        stars = self._row()
        for n in range(1, 6):
            b = self._button(f"{n}\n{tr(f'rating.word_{n}', lang)}", lambda n=n: app.act("set_rating", n),
                             name=f"star:{n}", into=stars, font=22)
            self._choose(b, n == vm.rating)
        tags = self._take("tags", lambda: GridLayout(cols=2, size_hint_y=None))
        tags.clear_widgets()
        tags.spacing = dp(16) * _scale(), dp(10) * _scale()
        tags.unbind(minimum_height=tags.setter("height"))
        tags.bind(minimum_height=tags.setter("height"))
        self.ids.body.add_widget(tags)
        for tag in vm.catalogue.rating_tags:
            on = tag.id in vm.rating_tags
            b = self._button(("✓ " if on else "") + (tag.names.get(lang) or tag.names["zh-CN"]),
                             lambda t=tag.id: app.act("toggle_tag", t), name=f"tag:{tag.id}", into=tags)
            self._choose(b, on)
        self._button(tr("rating.skip", lang), lambda: app.act("skip_rating"), where="actions", name="skip")
        self._button(tr("rating.submit", lang), lambda: app.act("submit_rating"), main=True, where="actions",
                     name="submit_rating", disabled=not vm.rating)


class DoneScreen(KioskScreen):
    def refresh(self, app) -> None:
        lang = app.vm.language
        self._clear()
        self.ids.title.text = tr("done.title", lang)
        if app.vm.used_card():
            self._text(tr("done.take_card", lang), big=True)
        self._demo_card_remove(app)
        self._button(tr("nav.home", lang), lambda: app.act("end_session"), main=True, where="actions", name="home")


class OutOfServiceScreen(KioskScreen):
    t_title = StringProperty("")
    t_body = StringProperty("")

    def refresh(self, app) -> None:
        self.t_title = tr("oos.title", app.vm.language)
        self.t_body = tr("oos.body", app.vm.language)


class CountdownOverlay(FloatLayout):
    """Shown by the app over the whole window in the last seconds of the idle timeout."""

    overlay = True  # the layout test checks it by itself, not as a sibling of the screen
    bg_rgba = (0, 0, 0, 0)

    def on_touch_down(self, touch):
        # Its own buttons first ("start again" must still end the session); any other touch is
        # the resident saying "still here": it extends the session and goes no further.
        if super().on_touch_down(touch):
            return True
        from kivy.app import App

        app = App.get_running_app()
        if app is not None:
            app.keep_going()
        return True


def _pad() -> BoxLayout:
    """The keypad's column: as tall as its rows, which the screen's fit may shrink."""
    pad = BoxLayout(orientation="vertical", size_hint_y=None, spacing=dp(8))
    pad.bind(minimum_height=pad.setter("height"))
    return pad


KEY_WORDS = {"C": "keypad.clear", "✓": "keypad.ok"}  # the two keys that are not digits say what they do


def _keypad(screen, on_key, lang: str, into=None) -> None:
    for keys in ("123", "456", "789", "C0✓"):
        row = screen._row(into)
        for ch in keys:
            label = tr(KEY_WORDS[ch], lang) if ch in KEY_WORDS else ch
            screen._button(label, lambda c=ch: on_key(c), name=f"pin:{ch}", into=row, main=ch == "✓")


class CardPinScreen(KioskScreen):
    """The resident types the social-security card's PIN; the digits live only in this widget."""

    entered = ""

    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        self.ids.title.text = tr("identify.pin", lang) + "  " + "●" * len(self.entered)
        if vm.message == "identify.pin_wrong":
            self._text(tr("identify.pin_wrong", lang, tries=vm.pin_tries))
        _keypad(self, app.card_pin_key, lang)
        self._button(tr("nav.back", lang), lambda: app.act("back"), where="actions", name="back")


class PinScreen(KioskScreen):
    entered = ""

    def refresh(self, app) -> None:
        lang = app.vm.language
        self._clear()
        self.ids.title.text = tr("maint.pin", lang) + "  " + "●" * len(self.entered)
        if app.pin_message:
            self._text(app.pin_message)
        _keypad(self, app.pin_key, lang)
        self._button(tr("nav.back", lang), app.leave_maintenance, where="actions", name="back")


class MaintenanceScreen(KioskScreen):
    def refresh(self, app) -> None:
        lang = app.vm.language
        self._clear()
        self.ids.title.text = tr("maint.title", lang) + f"  ({app.kiosk_id})"
        state = tr("state.online" if app.vm.online else "state.offline", lang)
        self._text(tr("maint.controller", lang, state=state))
        self._text(tr("maint.devices", lang), big=True)
        for line in maintenance.device_lines(app.device_status, lang):
            self._text(line)
        if app.maintenance_note:
            self._text(app.maintenance_note)
        self._text(tr("maint.logs", lang), big=True)
        for line in app.recent_logs()[-8:]:
            self._text(line[:140])
        # Three to a row, their words a little smaller so that two lines fit a button.
        self._button(tr("maint.health", lang), app.health_check, where="actions", name="health", font=23)
        self._button(tr("maint.test_print", lang), app.maintenance_test_print, where="actions", name="test_print",
                     font=23)
        self._button(tr("maint.exit", lang), app.leave_maintenance, main=True, where="actions", name="exit", font=23)


def load_all() -> dict[str, type[KioskScreen]]:
    """Load every ``.kv`` once and return screen name -> class."""
    Builder.load_file(str(_DIR / "common.kv"))
    for name in SCREENS:
        Builder.load_file(str(_DIR / f"{name}.kv"))
    g = globals()
    return {name: g["".join(p.capitalize() for p in name.split("_")) + "Screen"] for name in SCREENS}
