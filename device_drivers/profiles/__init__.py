"""Device profiles as data: printer and scanner capabilities and quirks live in TOML files here,
never in ``if model == ...`` branches. ``load("printer", "generic-80")`` or a path to a file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from foundation.errors import ConfigError

HERE = Path(__file__).resolve().parent


def load(kind: str, name_or_path: str | Path) -> dict[str, Any]:
    """Read ``<kind>-<name>.toml`` from this folder, or a TOML file given by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = HERE / f"{kind}-{name_or_path}.toml"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        known = sorted(p.stem.removeprefix(kind + "-") for p in HERE.glob(f"{kind}-*.toml"))
        raise ConfigError(f"no {kind} profile {name_or_path!r}; known: {', '.join(known)}",
                          field="profile") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"bad TOML: {exc}", path=str(path)) from None
    if data.get("kind") != kind:
        raise ConfigError(f"profile is for {data.get('kind')!r}, not {kind!r}", field="kind", path=str(path))
    return data
