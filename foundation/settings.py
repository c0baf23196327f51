"""Configuration files (TOML) parsed once into frozen dataclasses.

A bad value fails at start with an error naming the file and the field, for example
``kiosk.toml: telemetry_interval: expected a number, got 'fast'``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from foundation.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class BrokerURL:
    scheme: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_broker_url(text: str, *, field_name: str = "broker") -> BrokerURL:
    """Parse ``mqtt://host:port`` or ``mqtts://host:port`` (ports default to 1883 / 8883)."""
    if not isinstance(text, str) or "://" not in text:
        raise ConfigError(f"expected mqtt://host:port or mqtts://host:port, got {text!r}", field=field_name)
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"scheme must be mqtt or mqtts, got {parts.scheme!r}", field=field_name)
    if not parts.hostname:
        raise ConfigError(f"no host in {text!r}", field=field_name)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"bad port in {text!r}", field=field_name) from None
    if port is None:
        port = 8883 if parts.scheme == "mqtts" else 1883
    return BrokerURL(parts.scheme, parts.hostname, port)


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(value: Any, tp: Any, name: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], name)
    if tp is BrokerURL:
        return parse_broker_url(value, field_name=name)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"expected a table, got {value!r}", field=name)
        return from_mapping(tp, value, prefix=name + ".")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"expected a table, got {value!r}", field=name)
        _, vt = typing.get_args(tp)
        return types.MappingProxyType({k: _convert(v, vt, f"{name}.{k}") for k, v in value.items()})
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"expected a list, got {value!r}", field=name)
        (et, *_) = typing.get_args(tp)
        return tuple(_convert(v, et, f"{name}[{i}]") for i, v in enumerate(value))
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"expected a path string, got {value!r}", field=name)
        return Path(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"expected a number, got {value!r}", field=name)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}", field=name)
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"expected {_type_name(tp)}, got {value!r}", field=name)
        return value
    return value


def from_mapping(cls: type[T], data: dict[str, Any], *, prefix: str = "") -> T:
    """Build the frozen dataclass ``cls`` from a mapping, naming any bad or unknown field."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown setting (known: {', '.join(sorted(known))})", field=prefix + key)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _convert(data[f.name], hints[f.name], prefix + f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError("required setting is missing", field=prefix + f.name)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    return obj


def load_toml(cls: type[T], path: str | Path, overrides: dict[str, Any] | None = None) -> T:
    """Read ``path`` (TOML), apply command-line ``overrides`` and build ``cls``."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path)) from None
    except PermissionError:
        raise ConfigError("file is not readable (permission denied)", path=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=str(path)) from None
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return from_mapping(cls, data)
    except ConfigError as exc:
        raise ConfigError(str(exc), field=exc.field, path=str(path)) from None


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"must be greater than 0, got {getattr(obj, name)!r}", field=name)


@dataclass(frozen=True)
class DevicePorts:
    """Serial ports by stable path (``/dev/serial/by-id/...``) or pyserial URL; empty = absent."""

    printer: str = ""
    printer_profile: str = "generic-80"  # device_drivers/profiles/printer-<name>.toml
    id_reader: str = ""
    card_reader: str = ""
    scanner: str = ""
    supervisor: str = ""


@dataclass(frozen=True)
class KioskConfig:
    kiosk_id: str
    broker: BrokerURL
    data_dir: Path
    site: str = "default"
    simulated: bool = False
    telemetry_interval: float = 30.0
    keepalive: int = 10
    language: str = "zh-CN"
    controller_public_key: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    maintenance_pin_hash: str = ""
    # Devices without which the kiosk shows its out-of-service screen while they are in error
    # (most services need the ID reader; a kiosk that only prints tickets may name the printer).
    critical_devices: tuple[str, ...] = ("id_reader",)
    devices: DevicePorts = field(default_factory=DevicePorts)
    # The fleet's key for residents' one-way references (written by ``enroll``). Without it the kiosk
    # makes a key of its own in data_dir: references then differ from kiosk to kiosk.
    resident_ref_key_file: str = ""
    # Where ``kiosk-provision renew`` asks for a new certificate (written by ``enroll``).
    enrolment_url: str = ""
    # The fleet's time zone (the controller's ``time_zone``): receipts print their time in it.
    time_zone: str = "Asia/Shanghai"
    # Elderly mode switches itself on for the session when the card read says the resident is at
    # least this old (counted in time_zone); 0 = never (a resident still turns it on by hand).
    elderly_auto_age: int = 0

    def validate(self) -> None:
        check_kiosk_id(self.kiosk_id)
        age = self.elderly_auto_age
        if not isinstance(age, int) or isinstance(age, bool) or not (age == 0 or 50 <= age <= 120):
            raise ConfigError(f"must be 0 (off) or an age from 50 to 120, got {age!r}", field="elderly_auto_age")
        _positive(self, "telemetry_interval", "keepalive")
        _zone(self.time_zone)
        if self.language not in ("zh-CN", "zh-HK", "en"):
            raise ConfigError(f"must be zh-CN, zh-HK or en, got {self.language!r}", field="language")
        known = [f.name for f in dataclasses.fields(DevicePorts) if not f.name.endswith("_profile")]
        for i, name in enumerate(self.critical_devices):
            if name not in known:
                raise ConfigError(f"must be one of {', '.join(known)}, got {name!r}", field=f"critical_devices[{i}]")


@dataclass(frozen=True)
class ControllerConfig:
    broker: BrokerURL
    data_dir: Path
    http: str = "127.0.0.1:8080"
    client_id: str = "kiosk-controller"
    telemetry_period: float = 30.0
    stale_after_periods: int = 3
    keepalive: int = 10
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    # Enrolment endpoint (POST /api/v1/enroll, /renew) in the console: the fleet folder made by
    # ``kiosk-provision init-fleet`` and a file holding the CA key's passphrase (or systemd's
    # LoadCredential=ca-passphrase:...). Empty: the controller serves no enrolment.
    fleet_dir: str = ""
    ca_passphrase_file: str = ""
    # Reverse proxies whose X-Forwarded-For the console believes (addresses); empty: the peer's
    # address is the caller's, and a forged header from anyone (loopback too) is ignored.
    trusted_proxies: tuple[str, ...] = ()
    # How long the controller keeps things (days): downsampled telemetry, events, and the call-back
    # phone numbers residents typed with their feedback (the request itself is kept; only the
    # number is blanked once staff had time to call).
    history_retention_days: float = 7.0
    event_retention_days: float = 90.0
    phone_retention_days: float = 30.0
    # The fleet's time zone (IANA name): every time shown to people (console, kioskctl, reports)
    # is in this zone; everything stored stays UTC epoch seconds.
    time_zone: str = "Asia/Shanghai"
    # Fleet store: empty for the SQLite file in data_dir (the default), or a postgresql:// URL.
    database: str = ""
    # Bytes per second for all release downloads together (every kiosk of a roll-out shares it),
    # so a roll-out does not saturate the server's uplink, and for each downloading address (a
    # kiosk, or a site's kiosks behind one NAT address), so it does not saturate a site's 4G link.
    # 0: unlimited.
    release_download_rate: float = 0.0
    release_download_rate_per_kiosk: float = 0.0
    # Where kiosks download published releases (https://controller.example:8443/releases): the
    # address in every cmd/update of a roll-out. Empty: the console's address + /releases.
    releases_url: str = ""
    # Several controllers, one fleet (docs/scale-out.md): this instance's name. Empty: the one
    # controller of its store (plain subscriptions, client id ``client_id``). Set: the client id
    # and certificate name are ``controller-<instance>``, the kiosk topics are shared with the
    # other instances through ``$share/<share_group>/...``, and the database must be PostgreSQL.
    instance: str = ""
    share_group: str = "controllers"
    # The command-signing key (PEM); empty: controller_ed25519.pem in data_dir (made on first
    # start). Instances of one fleet must all name the same key: kiosks trust exactly one.
    signing_key: str = ""
    # The alarm rules file (the format of controller/alarm_rules.toml); empty: that packaged file.
    alarm_rules: str = ""

    def validate(self) -> None:
        _positive(self, "telemetry_period", "stale_after_periods", "keepalive", "history_retention_days",
                  "event_retention_days", "phone_retention_days")
        _zone(self.time_zone)
        for name in ("release_download_rate", "release_download_rate_per_kiosk"):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be 0 (unlimited) or more bytes per second, got {getattr(self, name)}",
                                  field=name)
        if not _TOPIC_LEVEL.fullmatch(self.share_group):
            raise ConfigError(f"must be letters, digits, - or _ (a topic level), got {self.share_group!r}",
                              field="share_group")
        if self.instance:
            if not _TOPIC_LEVEL.fullmatch(self.instance):
                raise ConfigError(f"must be letters, digits, - or _ (at most 48), got {self.instance!r}",
                                  field="instance")
            if not self.database.startswith(("postgresql://", "postgres://")):
                raise ConfigError("several controller instances share one PostgreSQL store: set database = "
                                  "\"postgresql://...\" (SQLite serves exactly one controller)", field="database")

    @property
    def mqtt_client_id(self) -> str:
        """The MQTT client id: ``controller-<instance>`` for an instance (the broker binds it to the
        certificate of that name), else ``client_id``."""
        return f"{CONTROLLER_PREFIX}{self.instance}" if self.instance else self.client_id

    @property
    def shared(self) -> bool:
        """True when this controller is one of several (shared subscriptions, singleton jobs under a lease)."""
        return bool(self.instance)


def _zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)",
                          field="time_zone") from None


CONTROLLER_PREFIX = "controller-"  # certificate names of controller instances; no kiosk may take one
_TOPIC_LEVEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")
# ``controller-...`` names are controller instances' certificates (the broker gives them the fleet).
_KIOSK_ID = re.compile(r"(?!controller-)[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_kiosk_id(kiosk_id: str) -> str:
    """Kiosk ids are topic levels: letters, digits, ``-`` and ``_`` (not first), at most 64 characters.

    Ids starting with ``_`` are reserved for the fleet's own topics (``kiosk/v1/_controller``), ids
    starting with ``controller-`` for the controller instances' certificate names.
    """
    # A regular expression, not a loop over characters: the controller checks every message's topic.
    if not (isinstance(kiosk_id, str) and _KIOSK_ID.fullmatch(kiosk_id)):
        if isinstance(kiosk_id, str) and kiosk_id.startswith(CONTROLLER_PREFIX):
            raise ConfigError(f"{kiosk_id!r}: names starting with {CONTROLLER_PREFIX!r} are reserved for "
                              "controller instances", field="kiosk_id")
        raise ConfigError(
            f"must be 1-64 characters of letters, digits, '-' or '_', got {kiosk_id!r}", field="kiosk_id"
        )
    return kiosk_id
