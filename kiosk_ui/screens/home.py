"""Home screen widget: shows the view-model's texts, refreshes the clock, switches language."""

from __future__ import annotations

from pathlib import Path

from kivy.clock import Clock
from kivy.lang import Builder
from kivy.properties import ObjectProperty, StringProperty
from kivy.uix.button import Button
from kivy.uix.screenmanager import Screen

Builder.load_file(str(Path(__file__).with_suffix(".kv")))


class HomeScreen(Screen):
    vm = ObjectProperty(None)
    t_title = StringProperty("")
    t_subtitle = StringProperty("")
    t_touch = StringProperty("")
    t_kiosk = StringProperty("")
    t_clock = StringProperty("")

    def on_vm(self, *_):
        self.refresh()
        box = self.ids.languages
        box.clear_widgets()
        for lang, label in self.vm.language_labels():
            btn = Button(text=label, font_size="24sp")
            btn.bind(on_release=lambda _b, code=lang: self.choose_language(code))
            box.add_widget(btn)
        Clock.schedule_interval(lambda _dt: self.refresh(), 10)

    def refresh(self) -> None:
        for key, value in self.vm.texts().items():
            setattr(self, f"t_{key}", value)

    def choose_language(self, lang: str) -> None:
        self.vm.set_language(lang)
        self.refresh()

    def start(self) -> None:
        """Touch to start: later issues lead on to the service menu."""
