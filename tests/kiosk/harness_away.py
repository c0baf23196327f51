"""The harness's resident who finds the services unavailable, walks away and comes back later.

A kiosk whose service centre is out of reach (controller or broker down) greys its services out
and says so: that is the promised behaviour, not a failed journey. Inside a ``["round", N]`` of a
script (tests/kiosk/harness.py), when the kiosk shows a service unavailable (its message, or the
service greyed out on the offline menu), this checks it is on screen in the catalogue's words (kiosk_ui/i18n, the kiosk's language), prints
``UNAVAILABLE round key wall-time``, walks away (the idle timeout ends and wipes the session; the
resident takes their card), waits until the kiosk sees its centre again, prints ``BACK round
wall-time`` and starts the round again from its first step. Whoever runs the script judges the
``UNAVAILABLE`` times against the outages it caused (benchmarks/soak_resident.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

# What the kiosk says when a service cannot be done for want of its centre (kiosk_ui/i18n).
UNAVAILABLE = ("error.offline_service", "error.backend_unavailable")
SHOW_TIMEOUT = 20.0  # for the message to be on screen (it is laid out a frame or two later)
RETURN_TIMEOUT = 900.0  # for the centre to be back
WALK_AWAY = 75.0  # seconds the resident is gone: past the idle timeout and its countdown
MAX_RETURNS = 20  # per round: more means the kiosk never gets through, whatever it shows


class Away:
    def __init__(self, runner: Any, keys: tuple[str, ...], labels: Any) -> None:
        self.runner, self.keys, self.labels = runner, keys, labels
        self.phase, self.since = "shown", time.monotonic()

    def tick(self) -> bool | None:
        """One step of the walk away and back; True while it goes on, False once it failed (the
        runner has said FAIL), None when the round starts again."""
        r, app = self.runner, self.runner.app
        now = time.monotonic()
        if self.phase == "shown":
            words = [app.t(k) for k in self.keys]
            shown = self.labels(app.sm.current_screen)
            if all(any(w in t for t in shown) for w in words):
                r.out("UNAVAILABLE", r.round_name, self.keys[-1], f"{time.time():.3f}")
                r.offset += WALK_AWAY
                card = (getattr(app, "sims", None) or {}).get("id_reader")
                if card is not None:  # the resident takes their card along
                    threading.Thread(target=_quietly, args=(card.control, {"cmd": "remove_card"}), daemon=True).start()
                self.phase, self.since = "gone", now
            elif now - self.since > SHOW_TIMEOUT:
                r.fail(f"{', '.join(self.keys)}: not shown in the catalogue's words ({words!r})")
                return False
        elif self.phase == "gone":
            if app.vm.screen == "attract":
                bad = {k: repr(v) for k, v in app.vm.resident_state().items() if v not in (None, "", 0, [], {})}
                if bad:
                    r.fail(f"resident state not wiped after walking away: {bad}")
                    return False
                self.phase, self.since = "waiting", now
            elif now - self.since > SHOW_TIMEOUT + WALK_AWAY:
                r.fail("the session did not end after the resident walked away")
                return False
        elif app.vm.online:
            r.out("BACK", r.round_name, f"{time.time():.3f}")
            return None
        elif now - self.since > RETURN_TIMEOUT:
            r.fail(f"the service centre was not back within {RETURN_TIMEOUT:.0f} s")
            return False
        return True


def shown_unavailable(app: Any, step: list, target: Any) -> tuple[str, ...] | None:
    """The catalogue keys of what the kiosk shows when a service is unavailable now, if it does:
    a service-unavailable message, or (offline, on the menu) the service the step would press
    greyed out (``target``, the widget the step names) under the menu's offline title."""
    key = getattr(app.vm, "message", "")
    if key in UNAVAILABLE:
        return (key,)
    if (step[0] == "press" and str(step[1]).startswith("service:") and app.vm.screen == "menu"
            and not app.vm.online and target is not None and target.disabled):
        return ("menu.offline_title", "menu.unavailable")
    return None


def _quietly(fn: Any, cmd: dict[str, Any]) -> None:
    # No card in the reader, or a busy simulator: nothing to take along.
    with contextlib.suppress(Exception):
        fn(cmd)
