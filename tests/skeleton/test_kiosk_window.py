"""The Kivy app opens a window under Xvfb, and its Chinese text renders as glyphs, not boxes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.support.processes import REPO

GLYPH_CHECK = textwrap.dedent("""
    import os, sys
    os.environ["KIVY_NO_ARGS"] = "1"; os.environ["KIVY_NO_CONSOLELOG"] = "1"
    from kivy.core.window import Window  # noqa: F401 - textures need a GL context
    from kivy.core.text import Label as CoreLabel
    from kiosk_ui.fonts import find_cjk_font
    font = find_cjk_font() if sys.argv[1] == "cjk" else "Roboto"
    def pixels(ch):
        lbl = CoreLabel(text=ch, font_size=48, font_name=font)
        lbl.refresh()
        return bytes(lbl.texture.pixels)
    # Without the glyphs, every character renders as the same "tofu" box.
    print("DISTINCT" if len({pixels(c) for c in "社区服务"}) == 4 else "SAME")
""")


def _glyphs(font: str, tmp_path) -> str:
    env = dict(os.environ, KIVY_HOME=str(tmp_path / f".kivy-{font}"), PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", GLYPH_CHECK, font], capture_output=True, text=True,
                       timeout=60, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1]


def test_cjk_font_has_chinese_glyphs_and_default_font_does_not(tmp_path):
    assert _glyphs("cjk", tmp_path) == "DISTINCT"
    assert _glyphs("roboto", tmp_path) == "SAME"  # proves the check can fail


def test_home_screen_screenshot(tmp_path, artifacts):
    shot = artifacts / "kiosk-home-zh-CN.png"
    shot.unlink(missing_ok=True)
    r = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "kiosk"), "--kiosk-id", "GD-0001",
         "--data-dir", str(tmp_path / "kiosk"), "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    from PIL import Image

    img = Image.open(shot)
    assert img.size[0] >= 800 and img.size[1] >= 480
    assert len(set(img.convert("RGB").getdata())) > 50  # text was drawn, not an empty window


def test_no_display_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "kiosk"), "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert r.returncode == 2 and "no display" in r.stderr


def test_kiosk_tells_systemd_it_is_ready_and_alive(tmp_path, procs):
    """Type=notify + WatchdogSec: READY=1 once the screen is up, then WATCHDOG=1 pings."""
    import signal
    import socket

    from tests.support.processes import Proc

    addr = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    sock.settimeout(60)
    # A running app (not --screenshot, which exits after a second): under load the first pings
    # may come late, so wait for them instead of racing the app's exit.
    p = Proc([os.path.join(os.path.dirname(sys.executable), "kiosk"), "--windowed", "--data-dir",
              str(tmp_path / "k")], env={"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "200000"})
    procs.append(p)
    got = []
    try:
        while len(got) < 3:
            got.append(sock.recv(100).decode())
    except TimeoutError:
        pass
    sock.close()
    p.signal(signal.SIGTERM)
    assert p.proc.wait(30) == 0, p.stderr_lines[-20:]
    assert got[0] == "READY=1"
    assert "WATCHDOG=1" in got[1:]


def test_sigterm_stops_the_app_cleanly(tmp_path, procs):
    """systemd stops the kiosk with SIGTERM: the app leaves its loop and exits 0."""
    import signal
    import time

    from tests.support.processes import Proc

    p = Proc([os.path.join(os.path.dirname(sys.executable), "kiosk"), "--windowed", "--data-dir",
              str(tmp_path / "k"), "--log-level", "INFO"])
    procs.append(p)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("Start application main loop" in s for s in p.stderr_lines):
        time.sleep(0.1)
    assert any("Start application main loop" in s for s in p.stderr_lines), p.stderr_lines[-20:]
    p.signal(signal.SIGTERM)
    assert p.proc.wait(20) == 0
