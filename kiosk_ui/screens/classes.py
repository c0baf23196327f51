"""The screens' Python side: each ``refresh(app)`` shows the view-model's state, nothing more.

Buttons call ``app.act(name, ...)`` (one method, no logic in kv). Layout lives in the ``.kv``
files next to this module, one per screen.
"""

from __future__ import annotations

import time
from pathlib import Path

from kivy.factory import Factory
from kivy.lang import Builder
from kivy.properties import StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from kiosk_ui.i18n import tr

_DIR = Path(__file__).parent
SCREENS = ("attract", "menu", "identify", "card_pin", "step", "working", "result", "failed", "print_failed",
           "rating", "done", "out_of_service", "maintenance", "pin")


class TopBar(BoxLayout):
    pass


class KioskScreen(Screen):
    def refresh(self, app) -> None:
        pass

    # Helpers that build the dynamic part of a screen from the view-model.
    def _clear(self):
        self.ids.body.clear_widgets()
        self.ids.actions.clear_widgets()

    def _text(self, text: str, big: bool = False):
        w = Factory.Title(text=text) if big else Factory.Body(text=text)
        self.ids.body.add_widget(w)
        return w

    def _button(self, text: str, on_press, *, main: bool = False, where: str = "body", name: str = ""):
        b = (Factory.MainButton if main else Factory.BigButton)(text=text)
        b.bind(on_release=lambda *_: on_press())
        b.kiosk_name = name  # the UI tests find buttons by this
        self.ids[where].add_widget(b)
        return b


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
        self.t_clock = time.strftime("%Y-%m-%d %H:%M", time.localtime(app.clock()))
        self.ids.start.kiosk_name = "start"
        box = self.ids.notices
        box.clear_widgets()
        for n in app.vm.catalogue.notices[:3]:
            box.add_widget(Factory.Body(text="· " + (n["titles"].get(lang) or n["titles"]["zh-CN"]),
                                        halign="left"))


class MenuScreen(KioskScreen):
    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        items = vm.menu(time.strftime("%H:%M", time.localtime(app.clock())))
        # Notes go under the title: the grid below holds only the services, two per row.
        lines = [tr("menu.title", lang)]
        if not vm.online:
            names = "、".join(s.name(lang) for s, ok in items if ok) or "-"
            lines.append(tr("menu.offline_note", lang, services=names))
        if vm.message:
            lines.append(tr(vm.message, lang))
        self.ids.title.text = "\n".join(lines)
        for svc, ok in items:
            label = svc.name(lang) + ("" if ok else f"  ({tr('menu.unavailable', lang)})")
            b = self._button(label, lambda s=svc.id: app.act("choose_service", s), name=f"service:{svc.id}")
            b.disabled = not ok
        self._button(tr("nav.home", lang), lambda: app.act("end_session"), where="actions", name="home")


class IdentifyScreen(KioskScreen):
    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        self.ids.title.text = vm.service.name(lang) if vm.service else ""
        if vm.identity is None:
            self._text(tr(f"identify.{vm.service.identification}", lang), big=True)
            self._text(tr(vm.message, lang) if vm.message else tr("identify.reading", lang))
            if app.simulated and vm.service.identification != "qr_voucher":
                self._button(tr("identify.demo_card", lang), app.place_demo_card, name="demo_card")
        else:
            self._text(tr("identify.hello", lang, name=vm.identity.masked_name()), big=True)
            self._text(tr("identify.number", lang, number=vm.identity.masked_number()))
            self._button(tr("identify.confirm", lang), lambda: app.act("confirm_identity"), main=True,
                         where="actions", name="confirm")
        self._button(tr("nav.back", lang), lambda: app.act("back"), where="actions", name="back")


class StepScreen(KioskScreen):
    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        step = vm.current_step()
        if step is None:
            return
        title = step.title.get(lang) or step.title["zh-CN"]
        self.ids.title.text = title + ("\n" + tr(vm.message, lang) if vm.message else "")
        for oid, label in vm.step_options():
            self._button(label, lambda o=oid: app.act("choose_option", o), name=f"option:{oid}")
        self._button(tr("nav.back", lang), lambda: app.act("back"), where="actions", name="back")


class WorkingScreen(KioskScreen):
    def refresh(self, app) -> None:
        self._clear()
        lang = app.vm.language
        key = "print.printing" if app.vm.print_state == "printing" else "working.wait"
        self.ids.title.text = tr(key, lang)
        self._text(app.progress_text)


class ResultScreen(KioskScreen):
    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        self.ids.title.text = vm.service.name(lang) if vm.service else ""
        if vm.message:
            self._text(tr(vm.message, lang))
        for i, line in enumerate(app.result_lines()):
            self._text(line, big=(i == 0))
        if vm.service and "receipt" in vm.service.output and vm.print_state == "":
            self._button(tr("result.print", lang), lambda: app.act("print_result"), where="actions", name="print")
        self._button(tr("nav.finish", lang), lambda: app.act("finish"), main=True, where="actions", name="finish")


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
        self.ids.title.text = tr("rating.title", lang)
        stars = BoxLayout(size_hint_y=None, spacing=10)
        for n in range(1, 6):
            b = Factory.BigButton(text="★" * n if n == vm.rating else str(n))
            if n == vm.rating:
                b.background_color = (1, 0.78, 0.2, 1)
            b.bind(on_release=lambda *_, n=n: app.act("set_rating", n))
            b.kiosk_name = f"star:{n}"
            stars.add_widget(b)
        stars.height = stars.children[0].height
        self.ids.body.add_widget(stars)
        for tag in vm.catalogue.rating_tags:
            on = tag.id in vm.rating_tags
            b = self._button(("✓ " if on else "") + (tag.names.get(lang) or tag.names["zh-CN"]),
                             lambda t=tag.id: app.act("toggle_tag", t), name=f"tag:{tag.id}")
            if on:
                b.background_color = (1, 0.78, 0.2, 1)
        self._button(tr("rating.skip", lang), lambda: app.act("skip_rating"), where="actions", name="skip")
        b = self._button(tr("rating.submit", lang), lambda: app.act("submit_rating"), main=True, where="actions",
                         name="submit_rating")
        b.disabled = not vm.rating


class DoneScreen(KioskScreen):
    def refresh(self, app) -> None:
        lang = app.vm.language
        self._clear()
        self.ids.title.text = tr("done.title", lang)
        self._text(tr("done.take_card", lang), big=True)
        self._button(tr("nav.home", lang), lambda: app.act("end_session"), main=True, where="actions", name="home")


class OutOfServiceScreen(KioskScreen):
    t_title = StringProperty("")
    t_body = StringProperty("")

    def refresh(self, app) -> None:
        self.t_title = tr("oos.title", app.vm.language)
        self.t_body = tr("oos.body", app.vm.language)


def _keypad(screen, on_key) -> None:
    for row in ("123", "456", "789", "C0✓"):
        line = BoxLayout(size_hint_y=None, spacing=10)
        for ch in row:
            b = Factory.BigButton(text=ch)
            b.kiosk_name = f"pin:{ch}"
            b.bind(on_release=lambda *_, c=ch: on_key(c))
            line.add_widget(b)
        line.height = line.children[0].height
        screen.ids.body.add_widget(line)


class CardPinScreen(KioskScreen):
    """The resident types the social-security card's PIN; the digits live only in this widget."""

    entered = ""

    def refresh(self, app) -> None:
        vm, lang = app.vm, app.vm.language
        self._clear()
        self.ids.title.text = tr("identify.pin", lang) + "  " + "●" * len(self.entered)
        if vm.message == "identify.pin_wrong":
            self._text(tr("identify.pin_wrong", lang, tries=vm.pin_tries))
        _keypad(self, app.card_pin_key)
        self._button(tr("nav.back", lang), lambda: app.act("back"), where="actions", name="back")


class PinScreen(KioskScreen):
    entered = ""

    def refresh(self, app) -> None:
        lang = app.vm.language
        self._clear()
        self.ids.title.text = tr("maint.pin", lang) + "  " + "●" * len(self.entered)
        if app.pin_message:
            self._text(app.pin_message)
        _keypad(self, app.pin_key)
        self._button(tr("nav.back", lang), app.leave_maintenance, where="actions", name="back")


class MaintenanceScreen(KioskScreen):
    def refresh(self, app) -> None:
        lang = app.vm.language
        self._clear()
        self.ids.title.text = tr("maint.title", lang) + f"  ({app.kiosk_id})"
        state = tr("state.online" if app.vm.online else "state.offline", lang)
        self._text(tr("maint.controller", lang, state=state))
        self._text(tr("maint.devices", lang), big=True)
        for name, st in sorted(app.device_status.items()):
            self._text(f"{name}: {st.get('state')} {st.get('detail', '')}")
        if app.maintenance_note:
            self._text(app.maintenance_note)
        self._text(tr("maint.logs", lang), big=True)
        for line in app.recent_logs()[-8:]:
            self._text(line[:140])
        self._button(tr("maint.health", lang), app.health_check, where="actions", name="health")
        self._button(tr("maint.test_print", lang), app.maintenance_test_print, where="actions", name="test_print")
        self._button(tr("maint.exit", lang), app.leave_maintenance, main=True, where="actions", name="exit")


def load_all() -> dict[str, type[KioskScreen]]:
    """Load every ``.kv`` once and return screen name -> class."""
    Builder.load_file(str(_DIR / "common.kv"))
    for name in SCREENS:
        Builder.load_file(str(_DIR / f"{name}.kv"))
    g = globals()
    return {name: g["".join(p.capitalize() for p in name.split("_")) + "Screen"] for name in SCREENS}
