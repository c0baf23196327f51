"""Prometheus ``/metrics`` in the text exposition format (version 0.0.4), written by hand.

Fleet gauges by status, ingest (kiosk updates seen by the console), alarm counts, command
outcomes, HTTP requests and controller health. No client library: the format is a few lines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from controller.web.fleetview import STATUSES

log = logging.getLogger(__name__)
REFUSAL_PREFIXES = ("rejected:", "dropped", "svc_refused:", "svc_response_topic_refused", "site_claim_refused")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Stats:
    requests: Counter = field(default_factory=Counter)  # (route, status) -> n
    latency: dict = field(default_factory=dict)  # route -> [bucket counts..., sum, count]
    commands: Counter = field(default_factory=Counter)  # (command, outcome) -> n
    logins: Counter = field(default_factory=Counter)  # outcome -> n
    errors: int = 0
    started: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(route, status)] += 1
            h = self.latency.setdefault(route, [0] * len(BUCKETS) + [0.0, 0])
            for i, b in enumerate(BUCKETS):
                if seconds <= b:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1


def _esc(v: object) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(console) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")

    from controller.web.core_gateway import Unavailable

    counts = console.fleet.counts()
    metric("kiosk_fleet_kiosks", "gauge", "Kiosks in the registry by console status.",
           [({"status": s}, counts[s]) for s in STATUSES])
    poller = console.poller
    metric("kiosk_console_kiosk_updates_total", "counter",
           "Kiosk record changes ingested by the console from the fleet store.",
           [({}, console.hub.published)])
    health = console.backend.health()
    metric("kiosk_controller_mqtt_connected", "gauge", "1 when the controller is connected to the broker.",
           [({}, int(health["connected"]))])
    metric("kiosk_controller_inbox_depth", "gauge", "MQTT messages waiting for the controller's worker.",
           [({}, health["inbox"])])
    metric("kiosk_controller_rejected_messages_total", "counter", "Messages refused by the fleet link codec.",
           [({}, health["rejected"])])
    # A mixed fleet mid-roll-out: payloads of a contract major this controller does not speak.
    metric("kiosk_controller_refused_versions_total", "counter",
           "Kiosk payloads refused for their contract version (docs/mqtt.md, Versions).",
           [({"version": k.split(":", 1)[1]}, v) for k, v in sorted(health.items())
            if k.startswith("refused_version:")])
    # The counted reasons (a fixed set: codec refusals, rows the store refused, requests over a
    # kiosk's queue bound, redirected replies, site claims): what a misbehaving kiosk is trying.
    refused = sorted((k, v) for k, v in health.items() if isinstance(k, str) and k.startswith(REFUSAL_PREFIXES))
    metric("kiosk_controller_refusals_total", "counter", "Input refused or dropped by the controller, by reason.",
           [({"reason": k}, v) for k, v in refused] or [({"reason": "none"}, 0)])
    ingest = {"received": "MQTT messages received from kiosks.",
              "events_new": "Kiosk events stored (first sight).",
              "events_duplicate": "Kiosk events dropped as duplicates (redelivery after reconnect).",
              "status_superseded": "Kiosk statuses ignored as older than the newest birth (connection stamp).",
              "device_superseded": "Device statuses ignored as older than the stored one (kiosk ts, boot).",
              "reported_superseded": "Config reports ignored as older than the stored one (kiosk ts, boot).",
              # Several instances (docs/scale-out.md, "Two lanes of kiosk locks").
              "deferred": "Messages taken again under their kiosk's exclusive lock (they decided something).",
              "telemetry_late": "Telemetry readings not stored as older than the kiosk's stored one."}
    for key, text in ingest.items():
        if key in health:
            metric(f"kiosk_controller_{key}_total", "counter", text, [({}, health[key])])
    for key, text in (("open_alarms", "Alarms open in the controller."),
                      ("open_commands", "Commands queued or sent, not yet final.")):
        if key in health:
            metric(f"kiosk_controller_{key}", "gauge", text, [({}, health[key])])
    try:
        outcomes = console.backend.command_outcomes()
        metric("kiosk_commands", "gauge", "Commands in the controller's store by status (outcome).",
               [({"status": st}, n) for st, n in sorted(outcomes.items())])
    except Unavailable:
        log.debug("no command outcomes for /metrics")
    try:
        alarms = console.backend.alarms(active=True)
        sev = Counter(a.get("severity", "unknown") for a in alarms)
        metric("kiosk_alarms_active", "gauge", "Active alarms by severity.",
               [({"severity": s}, n) for s, n in sorted(sev.items())] or [({"severity": "any"}, 0)])
        metric("kiosk_alarms_unacknowledged", "gauge", "Active alarms nobody acknowledged yet.",
               [({}, sum(1 for a in alarms if not a.get("acked_by")))])
    except Unavailable:  # alarms not provided by the core: omit the series rather than report zero
        log.debug("no alarms for /metrics")
    with console.stats.lock:
        cmds = sorted(console.stats.commands.items())
        reqs = sorted(console.stats.requests.items())
        lat = {k: list(v) for k, v in console.stats.latency.items()}
        logins = sorted(console.stats.logins.items())
    metric("kiosk_console_commands_total", "counter", "Commands sent from the console by command and outcome.",
           [({"command": c, "outcome": o}, n) for (c, o), n in cmds])
    metric("kiosk_console_logins_total", "counter", "Console sign-ins by outcome.",
           [({"outcome": o}, n) for o, n in logins])
    metric("kiosk_console_http_requests_total", "counter", "HTTP requests by route and status.",
           [({"route": r, "status": s}, n) for (r, s), n in reqs])
    lines.append("# HELP kiosk_console_http_request_seconds HTTP request duration.")
    lines.append("# TYPE kiosk_console_http_request_seconds histogram")
    for route, h in sorted(lat.items()):
        for i, b in enumerate(BUCKETS):
            lines.append(f'kiosk_console_http_request_seconds_bucket{{route="{_esc(route)}",le="{b}"}} {h[i]}')
        lines.append(f'kiosk_console_http_request_seconds_bucket{{route="{_esc(route)}",le="+Inf"}} {h[-1]}')
        lines.append(f'kiosk_console_http_request_seconds_sum{{route="{_esc(route)}"}} {h[-2]:.6f}')
        lines.append(f'kiosk_console_http_request_seconds_count{{route="{_esc(route)}"}} {h[-1]}')
    metric("kiosk_console_sse_clients", "gauge", "Browsers connected to the live stream.",
           [({}, console.hub.subscribers)])
    metric("kiosk_console_poll_errors_total", "counter", "Failed polls of the fleet store.",
           [({}, poller.errors if poller else 0)])
    metric("kiosk_console_internal_errors_total", "counter", "Requests that failed inside the console.",
           [({}, console.stats.errors)])
    metric("kiosk_controller_uptime_seconds", "gauge", "Seconds since the console started.",
           [({}, round(console.clock() - console.stats.started, 1))])
    return "\n".join(lines) + "\n" + "".join(more() for more in console.extra_metrics)


async def endpoint(request: Request) -> Response:
    # Fleet data must not leak to whoever can reach the port: Prometheus sends a viewer API token
    # (``authorization: {credentials: kt_...}`` in its scrape config).
    from controller.web.auth import require

    require(request, "viewer")
    return Response(render(request.app.state.console), media_type="text/plain; version=0.0.4; charset=utf-8")
