"""One kiosk message applied on the controller's worker, inside its batch's transaction: parsed
(or its parse error counted as a rejection), the birth's site taken from the kiosk's enrolment
record rather than its claim, handed to the pure handlers (``controller.handlers.handle``), and
what they decided and counted taken over by the controller.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from contract import topics, versions
from contract.commands import CommandResult
from contract.versions import UnsupportedVersion
from controller import handlers, kiosk_sites
from controller.effect_writes import EffectWriter
from controller.rejections import Rejections
from controller.store import Store
from controller.tally import Tally
from foundation.errors import ProtocolError

log = logging.getLogger(__name__)


class Ingesting(Protocol):
    """What applying a message needs of the controller (``controller.server.Controller``)."""

    state: handlers.FleetState
    tally: Tally
    rejections: Rejections
    writes: EffectWriter  # the readings applied to kiosks locked shared
    store: Store
    sites: kiosk_sites.SiteRegistry
    update_listeners: list[Callable[[str, Any, float], None]]
    _after_commit: list[Callable[[], None]]


def apply(ctl: Ingesting, msg: mqtt.MQTTMessage, now: float, out: list[handlers.Outgoing],
          parsed: topics.Parsed | Exception | None = None, lane: str = "exclusive") -> bool:
    """Apply one message; False when, its kiosk locked ``lane="shared"``, it would decide
    something (``handlers.Decides``): nothing of it was applied or counted."""
    if msg.topic == topics.CONTROLLER_STATUS:
        return True  # our own presence, matched by the status wildcard
    try:
        apply_one(ctl, msg, now, out, parsed, lane)
    except handlers.Decides:
        return False
    except Exception as exc:  # noqa: BLE001 - one odd message must not stop the fleet's ingest
        log.exception("handler failed on %s", msg.topic[:120])
        ctl.rejections.reject(msg, f"internal {type(exc).__name__}", now)
    ctl.tally.add("received")
    return True


def apply_one(ctl: Ingesting, msg: mqtt.MQTTMessage, now: float, out: list[handlers.Outgoing],
              parsed: topics.Parsed | Exception | None = None, lane: str = "exclusive") -> None:
    try:
        if parsed is None:
            parsed = topics.parse(msg.topic, bytes(msg.payload))
        elif isinstance(parsed, Exception):
            raise parsed
    except UnsupportedVersion as exc:
        # A kiosk on another contract major (a mixed fleet mid-roll-out): counted per version,
        # for the first few versions seen; a kiosk inventing versions must not grow the counters
        # (and /metrics labels) without bound.
        ctl.tally.add(ctl.rejections.version_counter(exc.version))
        ctl.rejections.reject(msg, str(exc), now)
        return
    except ProtocolError as exc:
        ctl.rejections.reject(msg, str(exc), now)
        return
    newer = parsed.version[1] > versions.MINOR  # read as far as this side knows the contract
    if parsed.kind == "svc/request":
        if newer:
            ctl.tally.add("newer_minor")
        return  # answered by the service thread (``Controller._on_message``); not expected here
    if parsed.kind == "update/state":
        # Told once committed: a batch done again must not tell the roll-out job twice.
        ctl._after_commit += [lambda f=listener, p=parsed: f(p.kiosk_id, p.model, now)
                               for listener in ctl.update_listeners]
    if parsed.kind == "status" and parsed.body.get("state") == "online":
        parsed = with_enrolled_site(ctl, parsed, now)
    unmatched = isinstance(parsed.model, CommandResult) and parsed.model.id not in ctl.state.commands
    ctl.state, more = handlers.handle(ctl.state, parsed, now, lane)  # may raise Decides: nothing done
    if newer:
        ctl.tally.add("newer_minor")
    if unmatched:
        ctl.tally.add("results_unmatched")
    if lane == "shared" and parsed.kind == "telemetry":
        ctl.writes.readings.setdefault(parsed.kiosk_id, []).append(parsed.model)
    out += more
    for name, n in ctl.state.counts.items():
        ctl.tally.add(name, n)
    ctl.state.counts.clear()


def with_enrolled_site(ctl: Ingesting, parsed: topics.Parsed, now: float) -> topics.Parsed:
    """The birth message with the site of the kiosk's enrolment record in place of its claim."""
    rec = ctl.state.kiosks.get(parsed.kiosk_id) or {}
    model = parsed.model
    claimed = model.site if model is not None else parsed.body.get("site")
    # The enrolment records are in the fleet database (on PostgreSQL too), never in a local file.
    site, refused = ctl.sites.site_for(ctl.store.conn, parsed.kiosk_id, claimed, rec.get("site", ""), now)
    if refused:
        ctl.tally.add("site_claim_refused")
    return dataclasses.replace(parsed, body={**parsed.body, "site": site},
                               model=dataclasses.replace(model, site=site) if model is not None else None)
