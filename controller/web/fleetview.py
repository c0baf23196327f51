"""The console's live view of the fleet: an in-memory index of every kiosk, kept fresh from the store.

The fleet controller writes kiosk records to SQLite; this view polls the store for changed rows
(cheap: a few rows per poll) and re-reads everything now and then, so the console filters and
pages 26,412 kiosks in memory within milliseconds and can tell the browsers exactly what changed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from contract import versions
from controller.handlers import announced_contract
from controller.web import console_reads

log = logging.getLogger(__name__)

STATUSES = ("online", "degraded", "out_of_service", "offline")
SORTS = ("kiosk_id", "site", "status", "last_seen")
MAX_PAGE_SIZE = 500


def _action(value: Any) -> str:
    # Kiosks before the contract's device status sent a missing action as the text "None".
    return "" if value is None or str(value) in ("", "None", "null") else str(value)


def device_entries(devices: Any) -> dict[str, dict[str, Any]]:
    """Devices as ``{name: {state, detail, required_action}}`` whether stored as strings or objects;
    ``detail`` stays a mapping of fields (paper, cover, ...) or an id, for the page to translate."""
    out: dict[str, dict[str, Any]] = {}
    if isinstance(devices, dict):
        for name, val in devices.items():
            if isinstance(val, dict):
                # Contract 1.1 statuses carry the fault word and the CEN/XFS detail object: the page
                # says the fault and the detail's fields in words (Translator.term / .fields).
                detail = val.get("detail", "")
                out[str(name)] = {"state": str(val.get("state", "unknown")), "fault": str(val.get("fault") or ""),
                                  "detail": detail if isinstance(detail, dict) else str(detail or ""),
                                  "required_action": _action(val.get("required_action"))}
            else:
                out[str(name)] = {"state": str(val), "detail": "", "required_action": ""}
    elif isinstance(devices, list):
        out = {str(n): {"state": "unknown", "detail": "", "required_action": ""} for n in devices}
    return out


def console_status(rec: dict[str, Any]) -> str:
    """Map the controller's liveness state and mode to what an operator cares about.

    ``offline`` covers kiosks that said goodbye, lost their link (will) or fell silent (stale);
    ``out_of_service`` means the kiosk is up but not serving residents on purpose;
    ``degraded`` means it serves but something needs a technician.
    """
    if rec.get("state") != "online":
        return "offline"
    if rec.get("mode") in ("out_of_service", "maintenance"):
        return "out_of_service"
    if rec.get("mode") == "safe":
        return "degraded"
    for dev in device_entries(rec.get("devices")).values():
        if dev["state"] in ("error", "unknown") or dev["required_action"]:
            return "degraded"
    return "online"


def summarize(rec: dict[str, Any]) -> dict[str, Any]:
    """The row the console shows and sends to browsers (no resident data exists in kiosk records)."""
    devices = device_entries(rec.get("devices"))
    return {
        "kiosk_id": rec["kiosk_id"],
        "site": rec.get("site", "") or "",
        "group": rec.get("group", "") or "",
        "state": rec.get("state", "unknown"),
        "reason": rec.get("reason", "") or "",
        "mode": rec.get("mode", "") or "",
        # The contract version the kiosk's latest birth announced (``kiosks.contract``; '' before any).
        "contract": str(rec.get("contract") or ""),
        "status": console_status(rec),
        "last_seen": rec.get("last_seen", 0.0),
        "state_since": rec.get("state_since", 0.0),
        "devices": devices,
        "actions": [f"{n}: {d['required_action']}" for n, d in sorted(devices.items()) if d["required_action"]],
    }


def contract_reading(announced: str) -> dict[str, str]:
    """What the kiosk page says of a kiosk's contract version: what its latest birth announced,
    the version the controller reads it as (``handlers.announced_contract``: the safe 1.0 before
    any birth was applied), and ``relation`` to this controller's version: ``older`` (newer config
    keys are left out for it), ``newer`` (what it adds is ignored) or ''."""
    read_as = announced_contract({"contract": announced})
    ours = (versions.MAJOR, versions.MINOR)
    relation = "" if not announced or read_as == ours else "older" if read_as < ours else "newer"
    return {"announced": announced, "read_as": "{}.{}".format(*read_as), "relation": relation,
            "controller": "{}.{}".format(*ours)}


@dataclass(frozen=True)
class Query:
    """A fleet list request: filters, sort and page, validated at the edge (see ``parse_query``)."""

    q: str = ""
    status: str = ""
    site: str = ""
    group: str = ""
    sort: str = "kiosk_id"
    page: int = 1
    size: int = 50


class QueryError(ValueError):
    """A fleet list parameter is invalid; the message names it."""


def parse_query(params: dict[str, str]) -> Query:
    def num(name: str, default: int, lo: int, hi: int) -> int:
        raw = params.get(name, "")
        if raw in ("", None):
            return default
        try:
            val = int(raw)
        except ValueError:
            raise QueryError(f"{name} must be an integer, got {raw!r}") from None
        if not lo <= val <= hi:
            raise QueryError(f"{name} must be between {lo} and {hi}, got {val}")
        return val

    status = params.get("status", "") or ""
    if status and status not in STATUSES:
        raise QueryError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    sort = params.get("sort", "") or "kiosk_id"
    if sort.lstrip("-") not in SORTS:
        raise QueryError(f"sort must be one of {', '.join(SORTS)} (prefix - for descending), got {sort!r}")
    q = (params.get("q", "") or "").strip()
    if len(q) > 100:
        raise QueryError("q must be at most 100 characters")
    return Query(q=q, status=status, site=(params.get("site") or "").strip(),
                 group=(params.get("group") or "").strip(), sort=sort,
                 page=num("page", 1, 1, 1_000_000), size=num("size", 50, 1, MAX_PAGE_SIZE))


class FleetView:
    """Thread-safe index of kiosk summaries with change notification."""

    def __init__(self, load_all: Callable[[], list[dict[str, Any]]],
                 load_changed: Callable[[float], list[dict[str, Any]]]) -> None:
        self._load_all = load_all
        self._load_changed = load_changed
        self._lock = threading.Lock()
        self.rows: dict[str, dict[str, Any]] = {}
        self._mark = 0.0
        self._order: list[str] | None = None  # kiosk ids sorted, rebuilt only when ids come or go
        self._loaded = False  # before the first full read every kiosk is "new"; none is news to a browser
        # Called with (changed rows, the rows among them of kiosks new since the view was first loaded).
        self.listeners: list[Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]] = []

    @classmethod
    def from_store(cls, db) -> FleetView:
        """The view of the fleet database ``db`` (a ``FleetDb``, or a data folder for its SQLite file)."""
        return cls(lambda: console_reads.all_kiosks(db), lambda since: console_reads.kiosks_changed(db, since))

    def _merge(self, records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        changed, added = [], []
        with self._lock:
            for rec in records:
                row = summarize(rec)
                self._mark = max(self._mark, row["last_seen"], row["state_since"])
                old = self.rows.get(row["kiosk_id"])
                if old is None:
                    self._order = None
                    if self._loaded:
                        added.append(row)
                if old is None or {k: v for k, v in old.items() if k != "last_seen"} != \
                        {k: v for k, v in row.items() if k != "last_seen"}:
                    changed.append(row)
                self.rows[row["kiosk_id"]] = row
        return changed, added

    def refresh_all(self) -> list[dict[str, Any]]:
        records = self._load_all()
        changed, added = self._merge(records)
        with self._lock:
            keep = {r["kiosk_id"] for r in records}
            for gone in set(self.rows) - keep:
                del self.rows[gone]
                self._order = None
            self._loaded = True
        return self._notify(changed, added)

    def refresh_changed(self) -> list[dict[str, Any]]:
        # A little slack: a row written with a slightly older timestamp is still picked up.
        return self._notify(*self._merge(self._load_changed(self._mark - 5.0)))

    def _notify(self, changed: list[dict[str, Any]], added: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if changed:
            for fn in list(self.listeners):
                try:
                    fn(changed, added)
                except Exception:  # a broken listener must not stop the poller
                    log.exception("fleet listener failed")
        return changed

    # -- reads ---------------------------------------------------------------------------------
    def get(self, kiosk_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self.rows.get(kiosk_id)

    def counts(self, site: str = "", group: str = "") -> dict[str, int]:
        out: dict[str, int] = dict.fromkeys(STATUSES, 0)
        with self._lock:
            for r in self.rows.values():
                if (not site or r["site"] == site) and (not group or r["group"] == group):
                    out[r["status"]] += 1
        out["total"] = sum(out[s] for s in STATUSES)
        return out

    def sites(self) -> list[dict[str, Any]]:
        """Per site: counts by status, worst first (most kiosks not online)."""
        by: dict[str, dict[str, int]] = {}
        with self._lock:
            for r in self.rows.values():
                c = by.setdefault(r["site"], dict.fromkeys(STATUSES, 0))
                c[r["status"]] += 1
        out = [{"site": s, **c, "total": sum(c.values())} for s, c in by.items()]
        out.sort(key=lambda x: (-(x["total"] - x["online"]), x["site"]))
        return out

    def groups(self) -> list[str]:
        with self._lock:
            return sorted({r["group"] for r in self.rows.values() if r["group"]})

    def list(self, query: Query) -> dict[str, Any]:
        q = query.q.lower()
        with self._lock:
            if self._order is None:
                self._order = sorted(self.rows)
            rows = [r for r in map(self.rows.__getitem__, self._order)
                    if (not query.status or r["status"] == query.status)
                    and (not query.site or r["site"] == query.site)
                    and (not query.group or r["group"] == query.group)
                    and (not q or q in r["kiosk_id"].lower() or q in r["site"].lower() or q in r["reason"].lower())]
        key = query.sort.lstrip("-")
        rank = {s: i for i, s in enumerate(reversed(STATUSES))}  # offline first when sorting by status
        desc = query.sort.startswith("-")
        if key == "kiosk_id":  # already in id order
            if desc:
                rows.reverse()
        elif key == "status":
            rows.sort(key=lambda r: rank[r["status"]], reverse=desc)  # stable: id order within a status
        else:
            rows.sort(key=lambda r: r[key], reverse=desc)
        total = len(rows)
        start = (query.page - 1) * query.size
        return {"total": total, "page": query.page, "size": query.size,
                "pages": max(1, -(-total // query.size)), "items": rows[start:start + query.size]}


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
