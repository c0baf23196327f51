"""Test harness: runs the real kiosk app and plays a scripted sequence of touches with Kivy's
touch simulation, taking screenshots and printing one line per step. Kivy starts once per process,
so every UI test runs this module in its own subprocess:

    python -m tests.kiosk.harness --script FILE.json --data-dir DIR [--config kiosk.toml | --simulated]

Steps (JSON list): ["press", NAME], ["press_prefix", PREFIX], ["screen", NAME, TIMEOUT], ["sim", PORT, CMD], ["shot", LABEL],
["text", SUBSTRING], ["no_text", SUBSTRING] (waits until no label shows it), ["lang", CODE], ["corner", N], ["idle", SECONDS], ["sync", TOKEN, TIMEOUT] (waits for the line "TOKEN [VALUE]" on stdin; "$SYNC" in a later sim command is VALUE),
["wiped"], ["wiped_identity"], ["round", NAME] (from here a service shown unavailable sends the resident away
and back later, to this step: tests/kiosk/harness_away.py), ["cleared", READER] (waits until the reader was seen
empty in this resident's session), ["woken"] (waits until the presence sensor woke the attract screen), ["layout", LABEL] (checks the screen in every
language, normal and elderly: BADLAYOUT lines), ["status"], ["elderly"], ["sizes"], ["mark"], ["elapsed", LABEL], ["rss", LABEL], ["frames", "on"|"off"].
Output: ``STEP n ...`` per step, ``FAIL ...`` (exit 1) or ``DONE`` (exit 0).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
import time
from pathlib import Path

from tests.kiosk.harness_away import MAX_RETURNS, Away, shown_unavailable

STEP_TIMEOUT = 20.0
SYNC_TIMEOUT = 120.0  # the test process may be doing slow things (commands, restarts) meanwhile


def _labels(widget):
    out = []
    for w in widget.walk():
        text = getattr(w, "text", None)
        if isinstance(text, str) and text:
            out.append(text)
    return out


def _find(root, name, prefix=False):
    for w in root.walk():
        got = getattr(w, "kiosk_name", None)
        if isinstance(got, str) and (got.startswith(name) if prefix else got == name) \
                and not getattr(w, "disabled", False):
            return w
    return None


@functools.cache
def _touch_class():
    from kivy.input.motionevent import MotionEvent

    class Touch(MotionEvent):
        def depack(self, args):
            self.sx, self.sy = args["x"], args["y"]
            super().depack(args)

    return Touch


def _touch(x: float, y: float) -> None:
    """Touch down and up at window position (x, y), as Kivy's ``kivy.tests.common.UnitTestTouch`` does.
    That module imports pytest, which would add 11 MB to the app process whose memory the benchmark
    measures, so the same few lines live here."""
    from kivy.base import EventLoop

    win = EventLoop.window
    touch = _touch_class()("UnitTestTouch", 99, {"x": x / (win.width - 1.0), "y": y / (win.height - 1.0)},
                           is_touch=True, type_id="touch")
    touch.profile = ["pos"]
    EventLoop.post_dispatch_input("begin", touch)
    EventLoop.post_dispatch_input("end", touch)


class Runner:
    def __init__(self, app, steps, artifacts: Path, tag: str):
        self.app = app
        self.steps = steps
        self.artifacts = artifacts
        self.tag = tag
        self.i = 0
        self.started = None
        self.offset = 0.0
        self.busy = False
        self.sync_value = ""
        self.candidate = None
        self.round_name = ""  # inside a ["round", NAME]: a resident who finds the centre down comes back
        self.round_start: int | None = None
        self.returns = 0
        self.away: Away | None = None
        self.stdin_lines: list[str] = []
        threading.Thread(target=self._read_stdin, daemon=True).start()

    def _read_stdin(self):
        for line in sys.stdin:
            self.stdin_lines.append(line.strip())

    def out(self, *parts):
        print(*parts, flush=True)

    def fail(self, why):
        self.out("FAIL", f"step {self.i} {self.steps[self.i] if self.i < len(self.steps) else ''}: {why}",
                 "screen=" + self.app.vm.screen, json.dumps(_labels(self.app.sm.current_screen)[:30], ensure_ascii=False))
        self.app.exit_code = 1
        self.app.stop()

    def tick(self, _dt):
        app = self.app
        if self.i >= len(self.steps):
            self.out("DONE")
            app.stop()
            return False
        if self.busy:
            return True
        step = self.steps[self.i]
        if self.away is None and self.round_start is not None:
            target = next((w for w in app.sm.current_screen.walk() if getattr(w, "kiosk_name", None) == step[1]),
                          None) if step[0] == "press" else None  # greyed out (disabled) too
            if unavailable := shown_unavailable(app, step, target):
                self.returns += 1
                if self.returns > MAX_RETURNS:
                    self.fail(f"round {self.round_name}: the services were unavailable {MAX_RETURNS} times")
                    return False
                self.away = Away(self, unavailable, _labels)
        if self.away is not None:
            return self._away()
        now = time.monotonic()
        if self.started is None:
            self.started = now
        elif now - self.started > (step[2] if step[0] in ("screen", "sync") and len(step) > 2
                                   else SYNC_TIMEOUT if step[0] in ("sync", "layout") else STEP_TIMEOUT):
            self.fail("timed out")
            return False
        kind = step[0]
        done = True
        screen = app.sm.current_screen
        # The countdown overlay lies over the screen while it shows: it is searched first.
        overlay = app.__dict__.get("overlay")
        roots = ([overlay] if overlay is not None and overlay.parent is not None else []) + [screen]
        if kind in ("press", "press_prefix"):
            w = next((f for f in (_find(r, step[1], prefix=kind == "press_prefix") for r in roots) if f), None)
            if w is None or w is not self.candidate:
                # Press only a widget seen on the previous tick too: new widgets are laid out a frame
                # later. A widget below the fold is scrolled into view first, as a resident would.
                self.candidate = w
                parent = w.parent if w is not None else None
                for _ in range(30):  # the Window is its own parent: walk a bounded number of levels
                    if parent is None or hasattr(parent, "scroll_to"):
                        break
                    parent = parent.parent
                if parent is not None and hasattr(parent, "scroll_to"):
                    parent.scroll_to(w, padding=10, animate=False)
                done = False
            else:
                self.candidate = None
                x, y = w.to_window(*w.center)
                _touch(x, y)
        elif kind == "screen":
            done = app.vm.screen == step[1] and app.sm.current == (step[1] if step[1] != "printing" else "working")
        elif kind == "text":
            done = any(step[1] in t for r in roots for t in _labels(r))
        elif kind == "labels":  # every text on the screen, for the test to check (translations)
            self.out("LABELS", step[1], json.dumps(_labels(screen), ensure_ascii=False))
        elif kind == "no_text":
            done = not any(step[1] in t for r in roots for t in _labels(r))
        elif kind == "shot":
            path = self.artifacts / f"kiosk-{step[1]}-{self.tag}.png"
            app.save_screenshot(path)
        elif kind == "sim":
            self.busy = True

            cmd = json.loads(json.dumps(step[2]).replace("$SYNC", self.sync_value))

            def send(port=step[1], cmd=cmd):
                try:
                    reply = app.sims[port].control(cmd)
                    self.out("SIM", json.dumps(reply))
                finally:
                    self.busy = False
            threading.Thread(target=send, daemon=True).start()
        elif kind == "elderly":
            if not app.vm.elderly:
                app.act("toggle_elderly")
        elif kind == "sizes":
            # Elderly mode: every button at least 60 x 60 dp, every text at least 18 dp.
            from kivy.metrics import dp
            from kivy.uix.button import Button
            from kivy.uix.label import Label

            small = [(type(w).__name__, getattr(w, "text", "")[:20], round(w.font_size / dp(1)), w.size)
                     for w in screen.walk() if isinstance(w, Label) and w.text and w.font_size < dp(18)]
            tiny = [(w.text[:20], w.size) for w in screen.walk() if isinstance(w, Button) and w.text
                    and (w.width < dp(60) or w.height < dp(60))]
            if small or tiny:
                self.fail(f"too small: text {small[:5]} buttons {tiny[:5]}")
                return False
            biggest = max(w.font_size for w in screen.walk() if isinstance(w, Label) and w.text)
            self.out("SIZES", round(biggest / dp(1)))
        elif kind == "mark":
            self.mark = time.monotonic()
        elif kind == "elapsed":
            self.out("ELAPSED", step[1], round(time.monotonic() - self.mark, 4))
        elif kind == "rss":
            rss = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmRSS"))
            self.out("RSS", step[1], int(rss))
        elif kind == "frames":
            from kivy.clock import Clock

            if step[1] == "on":
                self.frames = []
                self._frame_ev = Clock.schedule_interval(lambda dt: self.frames.append(dt), 0)
            else:
                self._frame_ev.cancel()
                self.out("FRAMES", json.dumps([round(f, 5) for f in self.frames]))
        elif kind == "lang":
            app.set_language(step[1])
        elif kind == "corner":
            for _ in range(step[1]):
                app.corner_tap()
        elif kind == "idle":
            self.offset += step[1]
        elif kind == "round":
            self.round_name, self.round_start, self.returns = str(step[1]), self.i, 0
        elif kind == "sync":
            self.out("WAIT", step[1])
            got = [line for line in self.stdin_lines if line.split(" ")[0] == step[1]]
            done = bool(got)
            if got:
                self.sync_value = got[0].partition(" ")[2]
        elif kind == "layout":
            done = self._layout(step[1], step[2] if len(step) > 2 else {})
        elif kind == "cleared":
            done = app.devices.reader_cleared(step[1])
        elif kind == "woken":
            done = app.woken >= 1
        elif kind == "wiped_identity":
            if app.vm.identity is not None:
                self.fail("an identity was read")
                return False
        elif kind == "wiped":
            state = app.vm.resident_state()
            bad = {k: repr(v) for k, v in state.items() if v not in (None, "", 0, [], {})}
            if bad:
                self.fail(f"resident state not wiped: {bad}")
                return False
            self.out("WIPED", app.vm.language, app.vm.elderly)
        elif kind == "status":
            self.out("STATUS", json.dumps({"screen": app.vm.screen, "online": app.vm.online,
                                           "mode": app.vm.mode, "woken": app.woken, "time_zone": app.time_zone,
                                           "menu": [s.id for s in app.vm.catalogue.services if s.enabled]}))
        if done:
            self.out("STEP", self.i, json.dumps(step, ensure_ascii=False)[:120])
            self.i += 1
            self.started = None
        return True

    def _away(self) -> bool:
        """The resident found the services unavailable: see tests/kiosk/harness_away.py."""
        assert self.away is not None
        going = self.away.tick()
        if going is None:  # back: the round again from its first step
            self.away, self.candidate, self.started = None, None, None
            assert self.round_start is not None
            self.i = self.round_start + 1
            return True
        return going

    LAYOUT_SETTLE = 8  # ticks between a change of language or mode and the check: layouts settle

    def _layout(self, label: str, opts: dict) -> bool:
        """One step over several ticks: each language, normal and elderly, rendered and checked."""
        from kivy.core.window import Window

        from kiosk_ui.i18n import LANGUAGES
        from tests.kiosk.layout_check import problems

        app = self.app
        variants = [(lang, elderly) for elderly in (False, True) for lang in LANGUAGES]
        state = self.__dict__.setdefault("_lay", {"k": 0, "orig": (app.vm.language, app.vm.elderly)})
        k = state["k"]
        state["k"] += 1
        idx, phase = divmod(k, self.LAYOUT_SETTLE + 1)
        lang, elderly = variants[idx] if idx < len(variants) else state["orig"]
        if phase == 0:
            app.set_language(lang)
            if app.vm.elderly != elderly:
                app.act("toggle_elderly")
            if idx == len(variants):
                del self._lay
                return True
        elif phase == self.LAYOUT_SETTLE:
            found = problems(app.sm.current_screen, tuple(Window.size), allow_scroll=opts.get("scroll", False))
            for why in found:
                self.out("BADLAYOUT", f"{label}|{lang}|{'elderly' if elderly else 'normal'}|{why}")
            self.out("LAYOUT", label, lang, elderly, tuple(Window.size), len(found),
                     getattr(app.sm.current_screen, "fits", 0))
        return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--script", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--config", type=Path)
    p.add_argument("--broker")
    p.add_argument("--simulated", action="store_true")
    p.add_argument("--artifacts", type=Path, default=Path("test-artifacts"))
    p.add_argument("--tag", default="zh-CN")
    p.add_argument("--language", default=None)
    p.add_argument("--size", default="1280x800")
    args = p.parse_args(argv)
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ["KIVY_HOME"] = str(args.data_dir / ".kivy")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    from foundation.logs import setup_logging

    setup_logging("INFO")
    from kiosk_ui.app import configure_window

    configure_window(True, args.size)
    from kivy.clock import Clock

    from kiosk_ui import app_main

    kargs = app_main.build_parser().parse_args(
        [a for a in [f"--data-dir={args.data_dir}", "--no-voice",
                     f"--config={args.config}" if args.config else "", f"--broker={args.broker}" if args.broker else "",
                     "--simulated" if args.simulated else "", f"--language={args.language}" if args.language else ""] if a])
    holder = {}
    kiosk, app = app_main.make_kiosk(kargs, extra={"clock": lambda: time.time() + holder["runner"].offset})
    runner = Runner(app, json.loads(args.script.read_text(encoding="utf-8")), args.artifacts, args.tag)
    holder["runner"] = runner
    Clock.schedule_interval(runner.tick, 0.05)
    try:
        app.run()
    finally:
        kiosk.close()
    return app.exit_code


if __name__ == "__main__":
    sys.exit(main())
