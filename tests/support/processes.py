"""Start project processes (simulators, agents, controller) and wait for their ready lines."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Proc:
    """A child process whose stdout lines are collected by a thread, for ``wait_for``."""

    def __init__(self, argv: list[str], *, env: dict | None = None, cwd: Path | None = None, stdin=True):
        full_env = dict(os.environ)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.update(env or {})
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            cwd=cwd or REPO,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._pumps = [threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True),
                       threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True)]
        for pump in self._pumps:
            pump.start()

    def _pump(self, stream, is_stdout: bool) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if is_stdout:
                self.stdout_lines.append(line)
                self.lines.put(line)
            else:
                self.stderr_lines.append(line)

    def wait_for(self, predicate, timeout: float = 15.0) -> str:
        """Wait for a stdout line for which ``predicate(line)`` is true (or that starts with it)."""
        if isinstance(predicate, str):
            prefix = predicate
            predicate = lambda s: s.startswith(prefix)  # noqa: E731
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{self.argv[:4]}: no matching line in {timeout} s; stdout={self.stdout_lines[-20:]} "
                    f"stderr={self.stderr_lines[-20:]}"
                )
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                # An exited child may still have lines in the pipe that the pump has not read:
                # only once the pump has seen end of file is an empty queue the last word.
                if self.proc.poll() is not None and not self._pumps[0].is_alive() and self.lines.empty():
                    raise RuntimeError(
                        f"{self.argv[:4]} exited {self.proc.returncode}; stderr={self.stderr_lines[-20:]}"
                    ) from None
                continue
            if predicate(line):
                return line

    def wait_exit(self, timeout: float = 15.0) -> int:
        """The exit code, once the child has exited and everything it wrote to stdout and stderr
        is in ``stdout_lines`` and ``stderr_lines`` (its exit comes before the pumps read the
        pipes' last lines)."""
        code = self.proc.wait(timeout)
        deadline = time.monotonic() + timeout
        for pump in self._pumps:
            # Bounded: a grandchild that outlives the child would hold the pipe open.
            pump.join(max(0.0, deadline - time.monotonic()))
        return code

    def send(self, obj: dict) -> dict:
        """Send one JSON control command on stdin and return the simulator's JSON reply."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        # Replies start with {"ok": ...}; notes the simulator prints on its own never do.
        line = self.wait_for(lambda s: s.startswith('{"ok"'))
        return json.loads(line)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def start_sim(device: str, link: Path, *, out: Path | None = None, baud: int | None = None) -> Proc:
    argv = [sys.executable, "-m", "hardware_sim", device, "--link", str(link)]
    if out is not None:
        argv += ["--out", str(out)]
    if baud is not None:
        argv += ["--baud", str(baud)]
    p = Proc(argv)
    p.wait_for(f"READY {device} ")
    return p
