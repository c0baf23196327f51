"""The Kivy application: window set-up, CJK font for every widget, screens, and the glue that runs
the session view-model's effects (card reads, backend calls, printing) on worker threads."""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import LabelBase
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import NoTransition, ScreenManager

from contract import catalogue as catalogue_mod
from contract import vocab
from device_drivers.iso7816 import PinBlocked, PinRequired, PinWrong
from device_drivers.supervisor import SupervisorDriver, SupervisorEvent
from foundation.errors import ConfigError, DeviceError, DeviceTimeout, KioskError, TransportError
from kiosk_ui.agent.runtime import KioskRuntime
from kiosk_ui.devices import DeviceMissing, Devices, ReadCancelled
from kiosk_ui.fonts import find_cjk_font
from kiosk_ui.i18n import tr
from kiosk_ui.service_client import ServiceBackend, ServiceRefused, ServiceUnavailable
from kiosk_ui.service_client.offline_tickets import OfflineTickets
from kiosk_ui.theme import ELDERLY_SCALE
from kiosk_ui.viewmodels import maintenance
from kiosk_ui.viewmodels.maintenance import MaintenanceGate
from kiosk_ui.viewmodels.results import receipt_items, result_lines
from kiosk_ui.viewmodels.session import SessionViewModel
from kiosk_ui.voice import Voice

log = logging.getLogger(__name__)
READ_TIMEOUT = 30.0
CARD_WATCH_INTERVAL = 1.0  # s between looks at the readers while a card lies there after a session


def configure_window(windowed: bool, size: str) -> None:
    """Must run before the Kivy window is created."""
    from kivy.config import Config

    w, _, h = size.partition("x")
    Config.set("graphics", "width", w or "1280")
    Config.set("graphics", "height", h or "800")
    Config.set("graphics", "fullscreen", "0" if windowed else "auto")
    Config.set("graphics", "borderless", "0" if windowed else "1")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    # No multisample anti-aliasing: the screens are axis-aligned rectangles and text (text textures are
    # anti-aliased already). Kivy's default of 2 samples doubled the frame time and added 30 MB of
    # resident memory under software OpenGL (docs/benchmarks.md), and costs fill rate on the Pi's GPU.
    Config.set("graphics", "multisamples", "0")
    # Residents must not be able to leave the app: Escape does not close it.
    Config.set("kivy", "exit_on_escape", "0")


class _Recent(logging.Handler):
    """Keeps the last log lines for the maintenance screen (they never hold resident data)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=50)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {record.levelname} "
                          f"{record.name}: {record.getMessage()}")


class KioskApp(App):
    """The resident-facing app. Built by :mod:`kiosk_ui.compose`, which hands it every collaborator:
    ``devices`` (the serial peripherals), ``supervisor`` (the board's driver, or None), ``fleet``
    (the runtime linking this kiosk to the controller, or None), ``backend`` (the service client)
    and ``sims`` (simulators, for the demo card button). The app subscribes itself to the ones that
    call back (desired config and mode, the controller's presence, the board's events)."""

    scale = NumericProperty(1.0)
    language = StringProperty("zh-CN")
    countdown_text = StringProperty("")
    in_session = BooleanProperty(False)  # the top bar's home button shows during a session
    elderly = BooleanProperty(False)  # the top bar's elderly button shows its state

    def __init__(self, *, kiosk_id: str, language: str, devices: Devices, ref_key: bytes,
                 screenshot: Path | None = None, data_dir: Path | None = None,
                 supervisor: SupervisorDriver | None = None, fleet: KioskRuntime | None = None,
                 backend: ServiceBackend | None = None, sims: dict[str, Any] | None = None, pin_hash: str = "",
                 clock: Callable[[], float] = time.time, voice: bool = True,
                 critical_devices: tuple[str, ...] = ("id_reader",), time_zone: str = "Asia/Shanghai",
                 health: Any = None, update_locks: Any = None, elderly_auto_age: int = 0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The window opens now, before run() (configure_window has set it up): the first frame is
        # then ready soon after build(), which the --screenshot start-up check relies on.
        from kivy.core.window import Window  # noqa: F401

        # The updater's hooks (kiosk_ui/update_hooks.py): health signals and the update lock.
        self.health, self.update_locks = health, update_locks
        self.kiosk_id = kiosk_id
        self.time_zone = time_zone  # receipts print the fleet's time, as the console shows it
        self.screenshot_path = screenshot
        self.exit_code = 0
        self.title = "Community Kiosk"
        self.clock = clock
        self.data_dir = Path(data_dir or ".")
        self.sims = sims or {}
        self.simulated = bool(self.sims)
        self.demo_cards: set[str] = set()  # readers the demo buttons put a card on (simulated only)
        self.supervisor = supervisor
        self.woken = 0
        self.devices = devices
        self.backend = backend
        self.offline = OfflineTickets(self.data_dir / "offline-tickets.json", clock=clock)
        self.gate = MaintenanceGate(pin_hash, self.data_dir / "maintenance-lock.json")
        self.voice = Voice(voice)
        self.base_catalogue = self._initial_catalogue()
        self.vm = SessionViewModel(self.base_catalogue, ref_key=ref_key, kiosk_id=kiosk_id, language=language,
                                   elderly_auto_age=elderly_auto_age, zone=time_zone)
        self.language = language
        self.pin_message = ""
        self.maintenance_note = ""
        self.device_status: dict[str, dict[str, str]] = {}
        # Out of service while the fleet says so or a critical device (config ``critical_devices``)
        # is in error; back to normal on its own once both clear.
        self.critical_devices = tuple(critical_devices)
        self.fleet_mode = "normal"
        self.device_fault = ""
        self.observers: list[Callable[[str], None]] = []  # tests watch screen changes
        self._watching_cards = False
        self._stopping = threading.Event()
        self._recent = _Recent()
        logging.getLogger().addHandler(self._recent)
        self.fleet = fleet

    def _subscribe(self) -> None:
        """Listen to the collaborators that call back, once the screens exist to show what they say."""
        if self.supervisor is not None:
            self.supervisor.add_listener(self._on_supervisor_event)
        if self.backend is not None:
            self.backend.watch_presence(self.on_presence)
        if self.fleet is not None:
            self.fleet.watch(on_config=self.on_desired, on_mode=self.on_mode)

    # -- catalogue and fleet hooks -----------------------------------------------------------
    def _initial_catalogue(self):
        cached = self.data_dir / "catalogue.json"
        if cached.is_file():
            try:
                return catalogue_mod.parse(json.loads(cached.read_text(encoding="utf-8")))
            except (ConfigError, ValueError) as exc:
                log.warning("cached catalogue ignored: %s", exc)
        return catalogue_mod.load_default()

    def on_desired(self, body: dict[str, Any]) -> None:
        """Desired config from the controller (any thread): catalogue and mode, no restart."""
        Clock.schedule_once(lambda _dt: self._apply_desired(body))

    def _apply_desired(self, body: dict[str, Any]) -> None:
        if isinstance(body.get("config"), dict):
            body = body["config"]  # the controller's envelope: {"version", "config"}
        doc = body.get("service_catalogue", body.get("services"))
        try:
            if isinstance(doc, dict):
                # A whole catalogue (names, steps, hours): it becomes this kiosk's base catalogue.
                self.base_catalogue = catalogue_mod.parse(doc)
                cached = self.data_dir / "catalogue.json"
                tmp = cached.with_suffix(".tmp")
                tmp.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
                os.replace(tmp, cached)  # a power cut never leaves half a catalogue
                self.vm.set_catalogue(self.base_catalogue)
            elif isinstance(doc, list):
                # The fleet's list of service ids: switch services on and off.
                self.vm.set_catalogue(catalogue_mod.restrict(self.base_catalogue, doc))
            if doc is not None:
                log.info("service catalogue applied",
                         extra={"fields": {"enabled": len([s for s in self.vm.catalogue.services if s.enabled])}})
        except ConfigError as exc:
            log.error("service catalogue rejected: %s", exc)
        if isinstance(body.get("time_zone"), str):  # validated by the agent (contract/desired_config.py)
            self.time_zone = body["time_zone"]  # receipts print the fleet's time, as the console shows it
            self.vm.zone = self.time_zone  # and a resident's age (elderly_auto_age) is counted in it
        mode = body.get("mode")
        if mode in vocab.COMMANDABLE_MODES:
            self.fleet_mode = mode
            self._apply_mode()
        self.sync()

    def on_mode(self, mode: str) -> None:
        """The controller set this kiosk's mode (any thread). Maintenance by the fleet keeps
        residents out just like out-of-service; a technician on site uses the hidden gesture."""
        target = "normal" if mode == "normal" else "out_of_service"

        def apply(_dt):
            self.fleet_mode = target
            self._apply_mode()
            log.info("mode set by the controller", extra={"fields": {"mode": mode}})
            self.sync()
        Clock.schedule_once(apply)

    def _apply_mode(self) -> None:
        target = "out_of_service" if self.fleet_mode != "normal" or self.device_fault else "normal"
        if self.vm.mode != target:
            self.vm.set_mode(target, self.clock())

    def on_presence(self, online: bool) -> None:
        def apply(_dt):
            self.vm.online = online
            log.info("service backend %s", "reachable" if online else "unreachable")
            self.sync()
        Clock.schedule_once(apply)

    def wake(self) -> None:
        """The supervisor's presence sensor saw someone: greet them on the attract screen."""
        if self.vm.screen != "attract":
            return
        self.woken += 1
        self.voice.say(tr("home.touch_to_start", self.vm.language), self.vm.language)
        self.screens["attract"].greet()

    def _on_supervisor_event(self, event: SupervisorEvent) -> None:
        """Presence signals from the supervisor board wake the attract screen (the fleet runtime
        listens to the same board for door, tamper and watchdog events)."""
        if event.kind == "presence":
            Clock.schedule_once(lambda _dt: self.wake())

    def _start_supervisor(self) -> None:
        """Our heartbeats tell the board's watchdog that the touch app (not only the OS) is alive."""
        if self.supervisor is None:
            return
        try:
            self.supervisor.start_heartbeat()
        except KioskError as exc:
            log.warning("supervisor board not available: %s", exc)

    # -- building ----------------------------------------------------------------------------
    def build(self):
        from kivy.core.window import Window  # created on import: after configure_window

        font = find_cjk_font()
        # Registering under Kivy's default name makes every widget use the CJK font.
        LabelBase.register(name="Roboto", fn_regular=font, fn_bold=font)
        from kiosk_ui.screens.classes import load_all

        self.sm = ScreenManager(transition=NoTransition())
        self.screens = {}
        for name, cls in load_all().items():
            self.screens[name] = cls(name=name)
            self.sm.add_widget(self.screens[name])
        Window.bind(on_touch_down=lambda *_: self.vm.touch(self.clock()))
        self._subscribe()
        self._start_supervisor()
        Window.bind(on_request_close=lambda *_: True)  # no way out for residents
        Clock.schedule_interval(self._tick, 0.5)
        Clock.schedule_interval(lambda _dt: self._poll_devices(), 10)
        self._poll_devices()
        self._watch_cards()  # a card lying on a reader at start-up is nobody's until lifted
        if self.backend is not None:
            self.vm.online = bool(getattr(self.backend, "online", False))
        self.sync()
        if self.screenshot_path is not None:
            self._screenshot_when_drawn(self.screenshot_path)
        Clock.schedule_once(lambda _dt: self._notify_systemd(), 0)
        return self.sm

    def _notify_systemd(self) -> None:
        """Under systemd (Type=notify, WatchdogSec): ready once the first frame is up, then pings
        from the Kivy main loop, so a hung UI thread stops the pings and systemd restarts us."""
        from foundation import sd_notify

        sd_notify.notify("READY=1")
        if self.health is not None:
            self.health.report("ready")
        interval = sd_notify.watchdog_interval()
        if interval:
            Clock.schedule_interval(lambda _dt: sd_notify.watchdog_ping(), interval)

    def t(self, key: str, _lang: str | None = None, **params) -> str:
        return tr(key, self.vm.language, **params)

    def sync(self) -> None:
        """Show the view-model's screen and state."""
        if self.update_locks is not None:
            self.update_locks.session(self.vm.in_session())
        self.language = self.vm.language
        self.scale = ELDERLY_SCALE if self.vm.elderly else 1.0
        self.elderly = self.vm.elderly
        self.in_session = self.vm.in_session()
        if self.vm.screen != "card_pin":
            self.screens["card_pin"].entered = ""  # a PIN never outlives its screen
        name = self.vm.screen if self.vm.screen in self.screens else "working"
        if name == "printing":
            name = "working"
        self.screens[name].refresh(self)
        if self.sm.current != name:
            self.sm.current = name
        for cb in list(self.observers):
            cb(self.vm.screen)

    def _tick(self, _dt) -> None:
        now = self.clock()
        effects = self.vm.tick(now) + self.vm.done_tick(now) + self.vm.left_card_tick(now)
        left = self.vm.countdown(now)
        self.countdown_text = tr("idle.countdown", self.vm.language, seconds=int(left + 0.99)) \
            if left is not None and left > 0 else ""
        self._show_countdown(bool(self.countdown_text))
        if effects:
            self._run(effects)
            self._show_countdown(False)
            self.sync()
        elif self.vm.screen == "attract":
            self.screens["attract"].show_clock(self)  # the rest changes only through sync()

    def _show_countdown(self, show: bool) -> None:
        from kivy.core.window import Window

        from kiosk_ui.screens.classes import CountdownOverlay

        overlay = self.__dict__.get("overlay")
        if show and overlay is None:
            overlay = self.overlay = CountdownOverlay()
        if overlay is None or show == (overlay.parent is not None):
            return
        if show:
            Window.add_widget(overlay)
            self.say("idle.stay")
        else:
            Window.remove_widget(overlay)

    def keep_going(self) -> None:
        """The resident touched the countdown: the session goes on."""
        self.vm.touch(self.clock())
        self.countdown_text = ""
        self._show_countdown(False)

    # -- actions from the screens --------------------------------------------------------------
    def act(self, name: str, *args) -> None:
        fn = getattr(self.vm, name)
        effects = fn(*args, self.clock())
        self._run(effects or [])
        self.sync()

    def set_language(self, lang: str) -> None:
        self.vm.set_language(lang, self.clock())
        self.sync()

    def result_lines(self) -> list[str]:
        vm = self.vm
        if vm.result is None or vm.service is None:
            return []
        return result_lines(vm.service, vm.result, vm.answers, vm.identity, vm.language)

    def say(self, key: str = "", always: bool = False, text: str = "") -> None:
        """A spoken prompt in elderly mode (``always``: in every mode): an i18n key, or a text
        that is already in the resident's language (a step's question from the catalogue)."""
        if self.vm.elderly or always:
            self.voice.say(text or tr(key, self.vm.language), self.vm.language)

    # -- effects -------------------------------------------------------------------------------
    def _post(self, fn: Callable[..., list], *args) -> None:
        def run(_dt):
            self._run(fn(*args, self.clock()) or [])
            self.sync()
        Clock.schedule_once(run)

    def _thread(self, target, *args) -> None:
        threading.Thread(target=target, args=args, daemon=True).start()

    def _run(self, effects) -> None:
        for e in effects:
            if e.kind == "read_card":
                self._thread(self._read_card, e.args["kind"], e.args.get("pin", ""), self.devices.session)
            elif e.kind == "call":
                self._thread(self._call, e.args)
            elif e.kind == "print":
                vm = self.vm
                if vm.service is None or vm.result is None:
                    continue  # the session ended before the print effect ran: nothing to print
                items = receipt_items(vm.service, vm.result, vm.answers, vm.identity, vm.language,
                                      self.kiosk_id, self.clock(), zone=self.time_zone)
                self._thread(self._print, items)
            elif e.kind == "reset_devices":
                self.devices.cancel()  # here, on the UI thread: before any read of the next session
                self._thread(self.devices.wipe)
            elif e.kind == "watch_cards":
                self.devices.new_resident()  # on the UI thread: before any read of the next session
                self._watch_cards()
            elif e.kind == "event":
                self._thread(self._emit_event, e.args["type"], e.args["fields"])
            elif e.kind == "speak":
                self.say(e.args.get("key", ""), e.args.get("always", False), e.args.get("text", ""))

    def _watch_cards(self) -> None:
        """After a session: look at the readers until none holds a card; the view-model shows and
        speaks the prompt, and reports a card that stays (one watcher at a time)."""
        if self._watching_cards:
            return
        self._watching_cards = True

        def run():
            try:
                while not self._stopping.is_set():
                    present = self.devices.cards_present()
                    self._post(self.vm.cards_seen, present)
                    if not present:
                        return
                    self._stopping.wait(CARD_WATCH_INTERVAL)
            finally:
                self._watching_cards = False
        self._thread(run)

    def _emit_event(self, event_type: str, fields: dict) -> None:
        """An event for staff through the fleet link's journal (stored and forwarded)."""
        log.warning("event for staff: %s", event_type, extra={"fields": fields})
        if self.fleet is not None:
            self.fleet.emit(event_type, fields)

    def _read_card(self, kind: str, pin: str, session: int) -> None:
        try:
            ident = self.devices.read_identity(kind, READ_TIMEOUT, pin, session,
                                               on_left_card=lambda: self._post(self.vm.left_card_on_reader))
        except ReadCancelled:
            return
        except PinRequired:
            self._post(self.vm.pin_needed)
            return
        except PinWrong as exc:
            tries = exc.tries_left
            self._post(lambda now: self.vm.pin_needed(now, tries))
            return
        except PinBlocked:
            self._post(self.vm.identity_failed, "pin_blocked")
            return
        except DeviceTimeout:
            self._post(self.vm.identity_failed, "no_card")
            return
        except TransportError as exc:
            log.warning("card reader unavailable: %s", exc)
            self._post(self.vm.identity_failed, "reader_unavailable")
            return
        except DeviceError as exc:
            reason = "reader_unavailable" if isinstance(exc, DeviceMissing) else \
                "bad_code" if kind == "qr_voucher" else "card_moved"
            self._post(self.vm.identity_failed, reason)
            return
        log.info("identification read", extra={"fields": {"kind": kind}})
        self._post(self.vm.identity_done, ident)

    def _call(self, args: dict) -> None:
        purpose = args.get("purpose", "result")
        try:
            if self.backend is None:
                raise ServiceUnavailable("no fleet link configured")
            data = self.backend.call(args["service"], args["op"], args["args"])
        except ServiceUnavailable as exc:
            if args["service"] == "queue_ticket" and args["op"] == "take":
                log.warning("backend unreachable, local ticket issued: %s", exc)
                data = self.offline.take(args["args"]["counter"])
            elif purpose == "rating":
                log.warning("rating not sent: %s", exc)
                return
            else:
                self._post(self.vm.call_failed, "offline")
                return
        except ServiceRefused as exc:
            if purpose != "rating":
                self._post(self.vm.call_failed, exc.code)
            return
        except KioskError as exc:
            log.error("service call failed: %s", exc)
            self._post(self.vm.call_failed, "backend_unavailable")
            return
        if purpose != "rating":
            self._post(self.vm.call_done, purpose, data)

    def _print(self, items: list[dict]) -> None:
        outcome = self.devices.print_receipt(items)
        self._post(self.vm.print_done, outcome.ok, outcome.reason)

    def _poll_devices(self, then: Callable[[], None] | None = None) -> None:
        """Device status is read on a worker thread (serial I/O); ``then`` runs on the UI thread
        once ``device_status`` holds the new status."""
        def poll():
            status = self.devices.status()

            def apply(_dt):
                self.device_status = status
                fault = next((d for d in self.critical_devices if status.get(d, {}).get("state") == "error"), "")
                if fault != self.device_fault:
                    log.warning("critical device %s", f"{fault} in error: out of service" if fault
                                else f"{self.device_fault} recovered")
                    self.device_fault = fault
                    self._apply_mode()
                    self.sync()
                if self.health is not None and all(status.get(d, {}).get("state") in ("idle", "busy")
                                                   for d in self.critical_devices):
                    self.health.report("devices")
                if then is not None:
                    then()
            Clock.schedule_once(apply)
        self._thread(poll)

    # -- maintenance ---------------------------------------------------------------------------
    def card_pin_key(self, ch: str) -> None:
        screen = self.screens["card_pin"]
        if ch == "C":
            screen.entered = ""
        elif ch == "✓":
            pin, screen.entered = screen.entered, ""
            self.act("card_pin_entered", pin)
            return
        elif len(screen.entered) < 12:
            screen.entered += ch
        self.vm.touch(self.clock())
        self.sync()

    def corner_tap(self) -> None:
        if self.gate.corner_tap(self.clock()):
            self.screens["pin"].entered = ""
            self.pin_message = ""
            self.vm.screen = "pin"
            self.sync()

    def pin_key(self, ch: str) -> None:
        pin = self.screens["pin"]
        if ch == "C":
            pin.entered = ""
        elif ch == "✓":
            now = self.clock()
            if self.gate.try_pin(pin.entered, now):
                self.vm.screen = "maintenance"
                log.info("maintenance mode entered")
                self._poll_devices()
            else:
                locked = self.gate.locked_for(now)
                self.pin_message = tr("maint.pin_locked", self.vm.language, seconds=int(locked)) if locked \
                    else tr("maint.pin_wrong", self.vm.language)
            pin.entered = ""
        elif len(pin.entered) < 12:
            pin.entered += ch
        self.sync()

    def leave_maintenance(self) -> None:
        self.vm.end_session(self.clock())
        self.maintenance_note = ""
        self.sync()

    def health_check(self) -> None:
        def show():
            self.maintenance_note = maintenance.health_note(self.device_status, self.vm.language)
            self.sync()
        self._poll_devices(then=show)  # the note shows this check's status, not the previous poll's

    def maintenance_test_print(self) -> None:
        def run():
            out = self.devices.test_print()
            note = maintenance.test_print_note(out.ok, out.reason, self.vm.language)
            log.info("maintenance test print", extra={"fields": {"ok": out.ok, "reason": out.reason}})

            def apply(_dt):
                self.maintenance_note = note
                self.sync()
            Clock.schedule_once(apply)
        self._thread(run)

    def recent_logs(self) -> list[str]:
        return list(self._recent.lines)

    def place_demo_card(self) -> None:
        """Simulated kiosks only: put a fictitious card on the simulated reader."""
        kind = self.vm.service.identification if self.vm.service else "id_card"
        port = "id_reader" if kind == "id_card" else "card_reader"
        sim = self.sims.get(port)
        if sim is None:
            return
        cmd = {"cmd": "place_card"} if kind == "id_card" else {"cmd": "place_card", "kind": "social_security"}
        self.demo_cards.add(port)
        self._thread(lambda: sim.control(cmd))
        self.sync()  # the "remove card" button appears

    def remove_demo_card(self) -> None:
        """Simulated kiosks only: take the demo card off the reader (a card left behind, or a
        card pulled away mid-read, as a resident would)."""
        ports, self.demo_cards = sorted(self.demo_cards), set()
        sims = [self.sims[p] for p in ports if p in self.sims]
        self._thread(lambda: [sim.control({"cmd": "remove_card"}) for sim in sims])
        self.sync()

    # -- screenshots and stopping --------------------------------------------------------------
    def save_screenshot(self, path: Path) -> Path:
        from kivy.core.window import Window

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        made = Window.screenshot(name=str(path.with_suffix("")) + "%(counter)s.png")
        if made:
            Path(made).replace(path)
        return path

    def _screenshot_when_drawn(self, path: Path, at_least: float = 1.0) -> None:
        """Save the screenshot once the window has shown a frame and ``at_least`` seconds passed:
        on a busy machine the first frame can come later than any fixed delay."""
        from kivy.core.window import Window

        drawn: list[bool] = []
        start = self.clock()

        def on_flip(*_args) -> None:
            drawn.append(True)
            Window.unbind(on_flip=on_flip)

        def check(_dt) -> bool:
            if not drawn or self.clock() - start < at_least:
                return True  # keep checking
            Clock.schedule_once(lambda _dt: self._screenshot_and_stop(path), 0)
            return False
        Window.bind(on_flip=on_flip)
        Clock.schedule_interval(check, 0.1)

    def _screenshot_and_stop(self, path: Path) -> None:
        self.save_screenshot(path)
        log.info("screenshot saved", extra={"fields": {"path": str(path)}})
        self.stop()

    def stop_with(self, exit_code: int) -> None:
        """Leave the Kivy loop; ``kiosk`` exits with ``exit_code`` (75: "restart me")."""
        self.exit_code = exit_code
        self.stop()

    def on_stop(self) -> None:
        self._stopping.set()
        logging.getLogger().removeHandler(self._recent)
        self.screens["card_pin"].entered = ""
        self.vm.end_session(self.clock())
        # Reader memory is wiped now, on the way out; the composition root closes the drivers.
        self.devices.cancel()
        self.devices.wipe()
