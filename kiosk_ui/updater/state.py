"""The updater's state on the kiosk: the folder layout and ``state.json``.

    ROOT/releases/<version>/     one release: its venv (built at this path), release.json, .installed
    ROOT/objects/<sha256>        verified downloads, content-addressed (shared by releases)
    ROOT/current   -> releases/<version>   what kiosk.service runs
    ROOT/committed -> releases/<version>   the last release that passed its health window
    ROOT/state.json              the trial in progress, releases marked bad, the last result, trusted keys

``state.json`` is only ever replaced whole (Fs.write_atomic), so it is the old or the new state.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import KioskError

INSTALLED_MARK = ".installed"


class UpdateError(KioskError):
    """An update step failed; ``reason`` is a stable code (the running release is untouched)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


@dataclass(frozen=True)
class Trial:
    version: str
    previous: str
    started: float
    boots: int = 0
    rollback_reason: str | None = None


@dataclass(frozen=True)
class UpdateState:
    trial: Trial | None = None
    bad: tuple[str, ...] = ()
    last_result: dict[str, Any] | None = None
    key_list: dict[str, Any] | None = None  # the trusted release key list, saved only once verified
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        d = asdict(self)
        d["bad"] = list(self.bad)
        return (json.dumps(d, sort_keys=True, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> UpdateState:
        try:
            d = json.loads(data)
            trial = Trial(**d["trial"]) if d.get("trial") else None
            return cls(trial=trial, bad=tuple(d.get("bad", ())), last_result=d.get("last_result"),
                       key_list=d.get("key_list"), extra=d.get("extra", {}))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise UpdateError("bad_state", f"state.json is unreadable: {exc}") from None


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def objects(self) -> Path:
        return self.root / "objects"

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def committed(self) -> Path:
        return self.root / "committed"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def release(self, version: str) -> Path:
        return self.releases / version

    def installed(self, version: str) -> bool:
        return (self.release(version) / INSTALLED_MARK).is_file()

    def link_version(self, link: Path) -> str | None:
        """The version a link names (``releases/<version>``), or None when it is missing."""
        try:
            target = Path(link.readlink())
        except (FileNotFoundError, OSError):
            return None
        return target.name if target.parent.name == "releases" else None

    def target(self, version: str) -> str:
        return f"releases/{version}"

    def load(self) -> UpdateState:
        try:
            return UpdateState.from_json(self.state_file.read_bytes())
        except FileNotFoundError:
            return UpdateState()


