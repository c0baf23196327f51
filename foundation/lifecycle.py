"""Process life cycle shared by the servers: config from file and flags, signals, clean exit."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any, TypeVar

from foundation.errors import KioskError
from foundation.settings import from_mapping, load_toml

T = TypeVar("T")


def add_common_args(p: argparse.ArgumentParser, *, broker_default: str | None = "mqtt://127.0.0.1:1883") -> None:
    p.add_argument("--config", type=Path, help="TOML config file (flags override its values)")
    p.add_argument("--broker", default=None, help=f"broker URL, mqtt://host:port or mqtts://host:port "
                                                  f"(default {broker_default})")
    p.add_argument("--data-dir", type=Path, default=None, help="folder for this process's state")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING or ERROR")


def build_config(cls: type[T], args: argparse.Namespace, overrides: dict[str, Any],
                 defaults: dict[str, Any]) -> T:
    """Config from ``--config`` if given, then flags; errors name the file and field."""
    values = {k: (str(v) if isinstance(v, Path) else v) for k, v in overrides.items() if v is not None}
    if args.config is not None:
        return load_toml(cls, args.config, {**values})
    return from_mapping(cls, {**defaults, **values})


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


class StopRequested(KioskError):
    """SIGTERM or SIGINT arrived while the process was still starting (e.g. waiting for the broker)."""


def raise_on_stop_signal() -> None:
    """Until ``wait_for_stop_signal`` runs, SIGTERM/SIGINT interrupt start-up with StopRequested."""

    def _raise(signum, _frame):
        raise StopRequested(f"stopped by signal {signal.Signals(signum).name} while starting")

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, _raise)


def start_service(service, *, say=None) -> int | None:
    """Start ``service`` (``start(say=...)``/``stop()``) while SIGTERM/SIGINT may interrupt start-up.

    Returns None once it runs, else the exit code: 0 when a signal stopped it while it was still
    waiting (for the broker, say), 2 when it failed with a clear message on stderr.
    """
    raise_on_stop_signal()
    try:
        service.start(say=say or (lambda m: print(m, file=sys.stderr, flush=True)))
    except StopRequested:
        service.stop()
        return 0
    except KioskError as exc:
        service.stop()
        return fail(str(exc))
    return None


def stop_signals() -> threading.Event:
    """From now on SIGTERM/SIGINT set the returned event instead of raising StopRequested. Call
    it as soon as ``start_service`` has returned None: a signal during what the process does next
    (starting its console, say) then waits for the orderly stop instead of escaping as an
    exception that skips it."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def wait_for_stop_signal(stop: threading.Event | None = None) -> None:
    """Block until SIGTERM or SIGINT (Ctrl-C), or until ``stop`` (from :func:`stop_signals`) is set."""
    stop = stop or stop_signals()
    while not stop.wait(0.5):
        pass


__all__ = ["StopRequested", "add_common_args", "build_config", "fail",
           "raise_on_stop_signal", "start_service", "stop_signals", "wait_for_stop_signal"]
