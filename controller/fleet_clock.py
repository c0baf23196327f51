"""The fleet's one clock for people: every time is stored as UTC epoch seconds and shown in the
fleet's time zone (the controller's ``time_zone`` setting, default Asia/Shanghai).

The console (``t.when`` and the ``when`` Jinja filter), ``kioskctl``, the reports and the residents'
requests all format through :class:`FleetClock`, so one moment reads the same everywhere whatever
the server's own ``TZ`` is. The controller records its zone in the store (``fleet_settings``) at
start so that ``kioskctl``, which only reads the store, shows the same zone without a config file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controller import sql_dialect
from foundation.errors import ConfigError

DEFAULT_ZONE = "Asia/Shanghai"
SETTINGS_TABLE = "CREATE TABLE IF NOT EXISTS fleet_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)"


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; a name zoneinfo does not know fails naming the ``time_zone`` field."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)",
                          field="time_zone") from None


@dataclass(frozen=True)
class FleetClock:
    """Formats UTC epoch seconds in the fleet's zone; ``None``/0 means "never" and gives ``empty``."""

    name: str = DEFAULT_ZONE
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", zone(self.name))

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def show(self, ts: float | None, *, seconds: bool = True, empty: str = "-") -> str:
        if not ts:
            return empty
        return self.local(ts).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def hm(self, ts: float) -> str:
        return self.local(ts).strftime("%H:%M")

    def day(self, ts: float) -> date:
        return self.local(ts).date()

    def start_of(self, day: date) -> float:
        """Epoch seconds of 00:00 on ``day`` in the fleet's zone (reports' periods are local days)."""
        return datetime.combine(day, datetime.min.time(), self.tz).timestamp()


def record(conn: Any, name: str) -> None:
    """Remember the controller's zone in its store, for readers without its config (kioskctl)."""
    if getattr(conn, "dialect", "") == "postgresql":
        # PostgreSQL's CREATE TABLE IF NOT EXISTS fails when another instance creates the same
        # table at that moment: instances starting together create it under the migrations' lock.
        from controller import pg_parts  # pg_parts imports this module's table

        pg_parts.migrate(conn, "fleet_settings")
    else:
        conn.execute(SETTINGS_TABLE)
    conn.execute("INSERT INTO fleet_settings(name, value) VALUES ('time_zone', ?) "
                 "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name,))


def recorded(conn: Any) -> FleetClock:
    """The zone the controller recorded, or the default when it never ran with this store."""
    try:
        row = conn.execute("SELECT value FROM fleet_settings WHERE name = 'time_zone'").fetchone()
    except Exception as exc:
        if sql_dialect.missing_schema(exc):  # a store from before the setting existed
            return FleetClock()
        raise
    return FleetClock(row[0]) if row else FleetClock()
