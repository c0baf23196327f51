"""One resident's session as a pure state machine: screens, answers, identity, idle timeout.

No Kivy, no threads, no clocks: time comes in as ``now`` and side effects go out as
:class:`Effect` values that the app runs (card reads, backend calls, printing, device reset) and
answers through the ``*_done``/``*_failed`` methods. A session ends (``end_session``) on finish or
after the idle timeout: every resident field is cleared and the language goes back to default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract.catalogue import PHONE, Catalogue, Service
from kiosk_ui.devices import ResidentIdentity
from kiosk_ui.i18n import DEFAULT_LANGUAGE, LANGUAGES
from kiosk_ui.viewmodels.age import is_elderly

IDLE_TIMEOUT = 60.0
COUNTDOWN = 15.0
ELDERLY_FACTOR = 2.0  # elderly mode: no timed step shorter than twice the normal one
DONE_SECONDS = 8.0
CARD_LEFT_ALERT = 60.0  # a card still on a reader this long after its session ended: an event for staff
MAX_CHOICES = 6  # a few big choices on one screen, no scrolling: the earliest free slots first
RESIDENT_FIELDS = ("service", "identity", "answers", "result", "dynamic_options", "message", "print_state",
                   "rating", "rating_tags", "step_index", "pin_tries", "entry")
MAX_ENTRY = 11


@dataclass(frozen=True)
class Effect:
    kind: str  # read_card, call, print, reset_devices, watch_cards, speak, event
    args: dict[str, Any] = field(default_factory=dict)


def _who(ident: ResidentIdentity | None) -> ResidentIdentity:
    if ident is None:
        raise ValueError("this service runs only for an identified resident")
    return ident


# service id -> (op, argument builder from answers and identity)
def _ops(service: str, answers: dict[str, str], ident: ResidentIdentity | None, key: bytes) -> tuple[str, dict]:
    if service == "queue_ticket":
        return "take", {"counter": answers["counter"]}
    if service == "appointment":
        return "book", {"site": answers["site"], "slot": answers["slot"], "resident_ref": _who(ident).ref(key)}
    if service == "certificate":
        who = _who(ident)
        return "issue", {"kind": answers["kind"], "holder_name": who.name, "id_masked": who.masked_number()}
    if service == "social_security":
        return "info", {"card_ref": _who(ident).ref(key)}
    if service == "volunteer":
        return answers["action"], {"resident_ref": _who(ident).ref(key)}
    if service == "certificate_check":
        return "verify", {"code": _who(ident).number}
    if service == "notices":
        return "list", {"group": answers["group"]}
    if service == "feedback":
        extra = {k: answers[k] for k in ("problem", "phone") if answers.get(k)}
        return "submit", {"category": answers["category"], "urgency": answers["urgency"], **extra}
    return "run", dict(answers)


class SessionViewModel:
    def __init__(self, catalogue: Catalogue, *, ref_key: bytes, kiosk_id: str = "demo",
                 language: str = DEFAULT_LANGUAGE, elderly_auto_age: int = 0, zone: str = "Asia/Shanghai") -> None:
        self.catalogue = catalogue
        # Elderly mode switches itself on for a session whose card holder is this old (0: never);
        # the age is counted in the kiosk's time zone ``zone``.
        self.elderly_auto_age = elderly_auto_age
        self.zone = zone
        self.ref_key = ref_key  # the fleet's resident-reference key (see ResidentIdentity.ref)
        self.kiosk_id = kiosk_id
        self.default_language = language
        self.language = language
        self.elderly = False
        self.screen = "attract"
        self.mode = "normal"  # normal | out_of_service | maintenance (from the controller or devices)
        self.online = False
        self.last_activity = 0.0
        self.sessions_ended = 0
        self.done_at = 0.0  # when the "done" screen showed
        # Card readers holding a card left behind after a session ended -> since when (no resident
        # data: only which reader), and those already reported to staff.
        self.left_cards: dict[str, float] = {}
        self.left_reported: set[str] = set()
        self._clear()

    # -- session ---------------------------------------------------------------------------------
    def _clear(self) -> None:
        identity: ResidentIdentity | None = getattr(self, "identity", None)
        if identity is not None:
            identity.wipe()
        self.service: Service | None = None
        self.identity: ResidentIdentity | None = None
        self.answers: dict[str, str] = {}
        self.result: dict[str, Any] | None = None
        self.dynamic_options: list[dict[str, str]] = []
        self.message = ""  # i18n key of the current notice or error
        self.print_state = ""  # "", printing, printed, failed:<reason>
        self.rating = 0
        self.rating_tags: list[str] = []
        self.step_index = 0
        self.pin_tries: int | None = None
        self.entry = ""  # digits typed on an input step (a phone number) until confirmed

    def resident_state(self) -> dict[str, Any]:
        """Everything that may hold resident data (privacy tests assert it is empty after a session)."""
        return {name: getattr(self, name) for name in RESIDENT_FIELDS}

    def timeouts(self) -> tuple[float, float]:
        f = ELDERLY_FACTOR if self.elderly else 1.0
        return IDLE_TIMEOUT * f, COUNTDOWN * f

    def touch(self, now: float) -> None:
        self.last_activity = now

    def in_session(self) -> bool:
        return self.screen not in ("attract", "out_of_service", "maintenance", "pin")  # card_pin is in session

    def countdown(self, now: float) -> float | None:
        """Seconds left shown to the resident in the last part of the idle timeout, else None."""
        if not self.in_session():
            return None
        idle, count = self.timeouts()
        left = idle - (now - self.last_activity)
        return max(left, 0.0) if left <= count else None

    def tick(self, now: float) -> list[Effect]:
        left = self.countdown(now)
        if left is not None and left <= 0:
            return self.end_session(now)
        return []

    def end_session(self, now: float) -> list[Effect]:
        self._clear()
        self.language = self.default_language
        self.elderly = False
        self.sessions_ended += 1
        self.last_activity = now
        self.screen = "out_of_service" if self.mode == "out_of_service" else "attract"
        return [Effect("reset_devices"), Effect("watch_cards")]

    # -- cards left behind -------------------------------------------------------------------------
    def used_card(self) -> bool:
        """Whether this session read a card (the done screen reminds the resident to take it)."""
        return self.identity is not None and self.identity.kind in ("id_card", "ss_card")

    def cards_seen(self, present: set[str], now: float) -> list[Effect]:
        """After a session ended, the readers found holding a card: shown and spoken at once."""
        fresh = [r for r in sorted(present) if r not in self.left_cards]
        self.left_cards = {r: self.left_cards.get(r, now) for r in sorted(present)}
        self.left_reported &= present
        # Spoken whatever the mode: the owner may be walking away, and the next resident must know.
        return [Effect("speak", {"key": "card_left.prompt", "always": True})] if fresh else []

    def left_card_tick(self, now: float) -> list[Effect]:
        """A card still there CARD_LEFT_ALERT s after its session: one event per card for staff."""
        effects = []
        for reader, since in self.left_cards.items():
            if reader not in self.left_reported and now - since >= CARD_LEFT_ALERT:
                self.left_reported.add(reader)
                effects.append(Effect("event", {"type": "card_left_behind",
                                                "fields": {"reader": reader, "seconds": int(now - since)}}))
        return effects

    def left_card_on_reader(self, now: float) -> list[Effect]:
        """The reader holds a card placed before this session: not read; the resident is asked to
        take it away and place their own."""
        if self.screen != "identify" or self.identity is not None:
            return []
        self.message = "identify.card_left_on"
        return [Effect("speak", {"key": "identify.card_left_on", "always": True})]

    # -- settings reachable on every screen ------------------------------------------------------
    def set_language(self, lang: str, now: float) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}")
        self.language = lang
        self.touch(now)

    def toggle_elderly(self, now: float) -> list[Effect]:
        self.elderly = not self.elderly
        self.touch(now)
        return [Effect("speak", {"key": "elderly.on"})] if self.elderly else []

    def set_mode(self, mode: str, now: float) -> list[Effect]:
        """The controller's mode or a critical device fault. A resident mid-service is not cut off
        by a mode change; the out-of-service screen shows when the session ends."""
        self.mode = mode
        if mode == "out_of_service" and not self.in_session() and self.screen != "maintenance":
            self.screen = "out_of_service"
        elif mode == "normal" and self.screen == "out_of_service":
            self.screen = "attract"
        return []

    def set_catalogue(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    # -- navigation ------------------------------------------------------------------------------
    def start(self, now: float) -> list[Effect]:
        if self.mode == "out_of_service":
            self.screen = "out_of_service"
            return []
        self.touch(now)
        self.screen = "menu"
        return [Effect("speak", {"key": "menu.title"})]

    def menu(self, hhmm: str) -> list[tuple[Service, bool]]:
        """(service, available now) for the menu; offline, only offline-capable services work."""
        return [(s, self.online or s.offline) for s in self.catalogue.menu(hhmm)]

    def choose_service(self, service_id: str, now: float) -> list[Effect]:
        self.touch(now)
        svc = self.catalogue.get(service_id)
        if svc is None or not svc.enabled:
            self.message = "error.service_unavailable"
            return []
        if not (self.online or svc.offline):
            self.message = "error.offline_service"
            return []
        self._clear()
        self.service = svc
        if svc.identification in ("id_card", "ss_card", "qr_voucher"):
            self.screen = "identify"
            return [Effect("read_card", {"kind": svc.identification}), Effect("speak", {"key": f"identify.{svc.identification}"})]
        return self._next_step()

    def identity_done(self, identity: ResidentIdentity, now: float) -> list[Effect]:
        self.touch(now)
        if self.screen != "identify" or self.service is None:
            identity.wipe()  # the resident left meanwhile: nothing from this read is kept
            return []
        if identity.kind == "qr_voucher":
            if not identity.number.startswith("KIOSK-CERT:"):
                identity.wipe()
                return self.identity_failed("bad_code", now)
            self.identity = identity
            return self._next_step()  # a scanned voucher needs no "that's me"
        self.identity = identity
        self.message = ""
        if not self.elderly and is_elderly(identity.details.get("birth", ""), identity.number,
                                           min_age=self.elderly_auto_age, now=now, zone=self.zone):
            # On until the session ends, like a touch on the elderly button; the top bar shows it
            # (one prompt: a second would cut the first short).
            self.elderly = True
        return [Effect("speak", {"key": "identify.confirm"})]

    def identity_failed(self, reason: str, now: float) -> list[Effect]:
        """``reason``: no_card, card_moved, bad_code, reader_unavailable, pin_blocked. The read is
        retried on screen, except when retrying cannot help (no reader; a blocked card)."""
        if self.screen != "identify" or self.service is None:
            return []
        self.message = f"identify.{reason}"
        if reason in ("reader_unavailable", "pin_blocked"):
            return []
        return [Effect("read_card", {"kind": self.service.identification})]

    def pin_needed(self, now: float, tries: int | None = None) -> list[Effect]:
        """The social-security card asks for its PIN (again, after a wrong one: ``tries`` left)."""
        if self.screen not in ("identify", "card_pin") or self.service is None:
            return []
        self.screen = "card_pin"
        self.message = "identify.pin" if tries is None else "identify.pin_wrong"
        self.pin_tries = tries
        return [Effect("speak", {"key": "identify.pin"})]

    def card_pin_entered(self, pin: str, now: float) -> list[Effect]:
        self.touch(now)
        if self.screen != "card_pin" or self.service is None or not (4 <= len(pin) <= 12 and pin.isdigit()):
            return []
        self.screen = "identify"
        self.message = ""
        return [Effect("read_card", {"kind": self.service.identification, "pin": pin})]

    def confirm_identity(self, now: float) -> list[Effect]:
        self.touch(now)
        if self.identity is None:
            return []
        return self._next_step()

    def _next_step(self) -> list[Effect]:
        svc = self.service
        if svc is None:
            return []
        self.message = ""
        if self.step_index < len(svc.steps):
            step = svc.steps[self.step_index]
            self.dynamic_options = []
            if step.options_from:
                self.screen = "working"
                return [Effect("call", {"service": svc.id, "op": step.options_from, "args": dict(self.answers),
                                        "purpose": "options"})]
            self.screen = "step"
            self.entry = ""
            return [self._speak_step(step)]
        op, args = _ops(svc.id, self.answers, self.identity, self.ref_key)
        self.screen = "working"
        return [Effect("call", {"service": svc.id, "op": op, "args": args, "purpose": "result"})]

    def _speak_step(self, step) -> Effect:
        """The step's question, spoken (the app speaks only in elderly mode): it comes from the
        service catalogue, in the resident's language."""
        return Effect("speak", {"text": step.title.get(self.language) or step.title["zh-CN"]})

    def current_step(self):
        if self.service is None or self.step_index >= len(self.service.steps):
            return None
        return self.service.steps[self.step_index]

    def step_options(self) -> list[tuple[str, str]]:
        step = self.current_step()
        if step is None:
            return []
        if step.options_from:
            return [(o["id"], o["label"]) for o in self.dynamic_options]
        return [(o.id, o.names.get(self.language) or o.names["zh-CN"]) for o in step.options_for(self.answers)]

    def choose_option(self, option_id: str, now: float) -> list[Effect]:
        self.touch(now)
        step = self.current_step()
        if step is None or option_id not in [o for o, _ in self.step_options()]:
            return []
        self.answers[step.field] = option_id
        self.step_index += 1
        return self._next_step()

    def entry_key(self, ch: str, now: float) -> list[Effect]:
        """A key of the keypad on an input step: a digit, C (clear) or ✓ (confirm)."""
        self.touch(now)
        step = self.current_step()
        if self.screen != "step" or step is None or not step.input:
            return []
        if ch == "C":
            self.entry, self.message = "", ""
        elif ch == "✓":
            if not PHONE.fullmatch(self.entry):
                self.message = "entry.phone_invalid"
                return []
            self.answers[step.field] = self.entry
            self.step_index += 1
            return self._next_step()
        elif ch.isdigit() and len(ch) == 1 and len(self.entry) < MAX_ENTRY:
            self.entry += ch
            self.message = ""
        return []

    def skip_step(self, now: float) -> list[Effect]:
        self.touch(now)
        step = self.current_step()
        if self.screen != "step" or step is None or not step.optional:
            return []
        self.answers.pop(step.field, None)
        self.step_index += 1
        return self._next_step()

    def back(self, now: float) -> list[Effect]:
        self.touch(now)
        self.entry = ""
        if self.screen == "step" and self.step_index > 0:
            self.step_index -= 1
            step = self.current_step()
            if step is None:
                return []
            self.answers.pop(step.field, None)
            if step.options_from:
                return self._next_step()
            return []
        self._clear()
        self.screen = "menu"
        return [Effect("reset_devices")]

    def call_done(self, purpose: str, data: dict[str, Any], now: float) -> list[Effect]:
        if self.service is None or self.screen != "working":
            return []
        if purpose == "options":
            slots = data.get("slots", [])[:MAX_CHOICES]
            self.dynamic_options = [{"id": s["id"], "label": s["label"]} for s in slots]
            self.screen = "step"
            self.message = "" if self.dynamic_options else "error.no_options"
            return [self._speak_step(self.current_step())]
        self.result = data
        self.screen = "result"
        effects = [Effect("speak", {"key": "result.ready"})]
        if "receipt" in self.service.output and "screen" not in self.service.output:
            effects += self.print_result(now)
        return effects

    def call_failed(self, code: str, now: float) -> list[Effect]:
        """``code``: offline, or the backend's refusal code. The resident is told on screen."""
        if self.service is None:
            return []
        self.message = "error.offline_service" if code == "offline" else f"error.{code}"
        self.screen = "failed"
        return [Effect("speak", {"key": self.message})]

    # -- printing --------------------------------------------------------------------------------
    def print_result(self, now: float) -> list[Effect]:
        self.touch(now)
        if self.result is None or self.service is None or self.print_state == "printing":
            return []
        self.print_state = "printing"
        self.screen = "printing"
        return [Effect("print", {"service": self.service.id})]

    def print_done(self, ok: bool, reason: str, now: float) -> list[Effect]:
        if self.service is None:
            return []
        self.touch(now)
        if ok:
            self.print_state = "printed"
            self.screen = "result"
            self.message = "print.done"
            return [Effect("speak", {"key": "print.done"})]
        self.print_state = f"failed:{reason}"
        self.screen = "print_failed"
        self.message = "print.paper_out" if reason == "paper_out" else "print.failed"
        return [Effect("speak", {"key": self.message})]

    def show_on_screen(self, now: float) -> list[Effect]:
        self.touch(now)
        self.screen = "result"
        self.message = "print.shown_instead"
        return []

    # -- finishing -------------------------------------------------------------------------------
    def finish(self, now: float) -> list[Effect]:
        """After every service: offer the rating."""
        self.touch(now)
        if self.service is None:
            return self.end_session(now)
        self.screen = "rating"
        return [Effect("speak", {"key": "rating.title"})]

    def set_rating(self, stars: int, now: float) -> None:
        self.touch(now)
        if 1 <= stars <= 5:
            self.rating = stars

    def toggle_tag(self, tag: str, now: float) -> None:
        self.touch(now)
        if tag in self.rating_tags:
            self.rating_tags.remove(tag)
        elif tag in [t.id for t in self.catalogue.rating_tags]:
            self.rating_tags.append(tag)

    def skip_rating(self, now: float) -> list[Effect]:
        return self._close_rating(now, skip=True)

    def submit_rating(self, now: float) -> list[Effect]:
        return self._close_rating(now, skip=False)

    def _close_rating(self, now: float, *, skip: bool) -> list[Effect]:
        self.touch(now)
        effects = []
        if not skip and self.rating and self.service is not None:
            effects.append(Effect("call", {"service": "rating", "op": "submit", "purpose": "rating",
                                           "args": {"service": self.service.id, "stars": self.rating,
                                                    "tags": list(self.rating_tags)}}))
        self.screen = "done"
        self.done_at = now
        return effects + [Effect("speak", {"key": "done.take_card" if self.used_card() else "done.title"})]

    def done_tick(self, now: float) -> list[Effect]:
        if self.screen == "done" and now - self.done_at >= DONE_SECONDS * (2 if self.elderly else 1):
            return self.end_session(now)
        return []
