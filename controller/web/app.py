"""The operator console's ASGI application: pages, REST API, SSE stream, metrics, OpenAPI.

``create_app(console)`` builds a Starlette app around a :class:`Console` (accounts, fleet view,
backend, clock). ``controller.web.serve`` runs it with uvicorn in a thread next to the Controller.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from controller import fleet_clock, sql_dialect
from controller.fleet_clock import FleetClock
from controller.fleet_db import FleetDb
from controller.store_pg import StoreUnavailable
from controller.web import api, i18n, live, metrics, openapi, pages
from controller.web.accounts import Accounts
from controller.web.auth import HTTPProblem, principal
from controller.web.body_limit import BodyLimit
from controller.web.core_gateway import Backend
from controller.web.fleetview import FleetView

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
# The console loads scripts, styles and images only from itself and is framed by no one: an
# injected <script> or inline handler would not run even if an escape were ever missed.
# The page's own inline starters carry a per-request nonce (``csp_nonce`` in every template).
CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin")]


@dataclass
class Console:
    """Everything the console's request handlers share."""

    accounts: Accounts
    fleet: FleetView
    backend: Backend
    data_dir: Path
    clock: Callable[[], float] = time.time
    hub: live.Hub = field(default_factory=live.Hub)
    stats: metrics.Stats = field(default_factory=metrics.Stats)
    poller: live.Poller | None = None
    fleet_dir: Path | None = None  # the fleet folder (CA certificate), for enrolment tokens' CA fingerprint
    clock_zone: FleetClock = field(default_factory=FleetClock)  # every time shown, in the fleet's zone
    # More /metrics text from parts served next to the console (the roll-outs), each a function.
    extra_metrics: list[Callable[[], str]] = field(default_factory=list)
    db: FleetDb | None = None  # the fleet database (default: the SQLite file in data_dir)

    def __post_init__(self) -> None:
        if self.db is None:
            self.db = FleetDb.of(self.data_dir)


def build_console(data_dir: Path, controller: Any = None, *, clock: Callable[[], float] = time.time,
                  fleet_dir: Path | str | None = None, time_zone: str | None = None,
                  database: str | None = None) -> Console:
    """The console of the fleet database: ``database`` (a postgresql:// URL), else the running
    controller's setting, else the SQLite store in ``data_dir``. Times show in ``time_zone``, else
    the running controller's, else the zone the controller last recorded in the store."""
    if database is None and controller is not None:
        database = controller.config.database
    db = FleetDb(Path(data_dir), database or "")
    fleet = FleetView.from_store(db)
    if time_zone is None and controller is not None:
        time_zone = controller.config.time_zone
    zone = FleetClock(time_zone) if time_zone else _recorded_zone(db)
    return Console(accounts=Accounts(data_dir, clock=clock, fleet_db=db), fleet=fleet, backend=Backend(db, controller),
                   data_dir=Path(data_dir), clock=clock, fleet_dir=Path(fleet_dir) if fleet_dir else None,
                   clock_zone=zone, db=db)


def _recorded_zone(db: FleetDb) -> FleetClock:
    conn = db.connect()
    try:
        return fleet_clock.recorded(conn)
    finally:
        conn.close()


templates = Jinja2Templates(directory=str(HERE / "templates"))


@pass_context
def _when_filter(ctx: Any, ts: float | None, seconds: bool = True) -> str:
    """``{{ ts|when }}``: the same as ``t.when(ts)``, the fleet's zone and this page's language."""
    return ctx["t"].when(ts, seconds=seconds)


templates.env.filters["when"] = _when_filter


def render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    t = i18n.for_request(request)
    who = getattr(request.state, "who", None)
    base = {"t": t, "lang": t.lang, "who": who, "csrf": who.csrf if who else "", "path": request.url.path,
            "csp_nonce": getattr(request.state, "csp_nonce", ""), "switch_to": i18n.switch_to(t.lang)}
    return templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)


async def _problem(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPProblem):  # Starlette registers it for HTTPProblem only
        return await _crash(request, exc)
    browser = "text/html" in request.headers.get("accept", "")
    if request.url.path.startswith(("/api/", "/metrics", "/events")) or not browser:
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    if exc.status == 401:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    t = i18n.for_request(request)
    who = getattr(request.state, "who", None)
    msg = t(exc.key, role=who.role if who else "-") if exc.key else exc.message
    return render(request, "error.html", {"message": msg}, status=exc.status)


async def _crash(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StoreUnavailable) or sql_dialect.connection_lost(exc):
        # PostgreSQL down or restarting: the request was fine, the next one reconnects (store_pg).
        log.warning("console request without the fleet database: %s", str(exc).strip()[:200],
                    extra={"fields": {"path": request.url.path}})
        return await _problem(request, HTTPProblem(503, "the fleet database cannot be reached now; try again "
                                                        "shortly", key="error.database"))
    log.exception("console request failed", extra={"fields": {"path": request.url.path}})
    request.app.state.console.stats.errors += 1
    return JSONResponse({"error": "internal error; see the controller log"}, status_code=500)


class _Context:
    """ASGI middleware: language and caller on ``request.state``, request counts for /metrics."""

    def __init__(self, app, console: Console, routes: tuple = ()) -> None:
        self.app = app
        self.console = console
        # /metrics labels only for routes that exist: unknown paths share one label, "other".
        self.labels = {_route_label(getattr(r, "path", "/")) for r in routes}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        state = scope.setdefault("state", {})
        state["lang"] = i18n.choose(request.cookies.get("lang"), request.headers.get("accept-language"))
        state["who"] = None
        state["csp_nonce"] = nonce = secrets.token_urlsafe(16)
        if not scope["path"].startswith(("/static/", "/healthz", "/favicon.ico")):  # no session lookup per asset
            try:
                state["who"] = principal(request)
            except HTTPProblem:
                pass  # a bad bearer token is reported by the route's require()
        status_holder = {}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                # The console is never framed (clickjacking on the command buttons) nor sniffed.
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS,
                                      (b"content-security-policy", CSP.format(nonce=nonce).encode())]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            label = _route_label(scope["path"])
            self.console.stats.request(label if label in self.labels else "other",
                                       status_holder.get("status", 500), time.perf_counter() - started)


def _route_label(path: str) -> str:
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        return "/api/v1/" + (parts[2] if len(parts) > 2 else "")
    return "/" + parts[0]


def create_app(console: Console, *, start_poller: bool = True, extra_routes: tuple = ()) -> Starlette:
    """The console app; ``extra_routes`` (the enrolment endpoint) are served next to it."""
    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if start_poller:
            console.poller = live.Poller(console.fleet, console.hub, alarms=_active_alarms(console.backend))
            console.poller.start()
        else:
            console.fleet.refresh_all()
        yield
        if console.poller is not None:
            console.poller.stop()

    routes = [
        *extra_routes,  # first: the API's catch-all under /api/v1 would answer 404 for them
        *pages.routes(),
        *api.routes(),
        Route("/events", live_stream, name="events"),
        Route("/metrics", metrics.endpoint, name="metrics"),
        Route("/openapi.json", openapi.endpoint, name="openapi"),
        Route("/healthz", lambda request: JSONResponse({"ok": True}), name="healthz"),
        # Browsers ask for /favicon.ico whatever the page links: answer it rather than log a 404.
        Route("/favicon.ico", lambda request: FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml"),
              name="favicon"),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(BodyLimit), Middleware(_Context, console=console, routes=tuple(routes))],
                    exception_handlers={HTTPProblem: _problem, Exception: _crash})
    app.state.console = console
    return app


def _active_alarms(backend: Backend):
    from controller.web.core_gateway import Unavailable

    def fetch():
        try:
            return backend.alarms(active=True)
        except Unavailable:
            return []

    return fetch


async def live_stream(request: Request) -> Response:
    """Server-sent events: ``kiosk`` (a changed row), ``added`` (kiosks new since the console started:
    ``count`` and up to 200 rows in ``items``), ``summary`` (counts), ``alarms``, ``reload``."""
    import asyncio

    from starlette.responses import StreamingResponse

    from controller.web.auth import require

    require(request, "viewer")
    console: Console = request.app.state.console
    q = console.hub.subscribe()

    async def stream():
        try:
            yield "retry: 2000\n\n"
            yield f"event: summary\ndata: {live.dumps(console.fleet.counts())}\n\n"
            active = _active_alarms(console.backend)()
            yield f"event: alarms\ndata: {live.dumps({'active': len(active)})}\n\n"
            while True:
                try:
                    frame = await asyncio.wait_for(q.get(), timeout=15)
                except TimeoutError:
                    frame = ": keep-alive\n\n"  # proxies drop silent connections
                if frame is None:  # the server is stopping; the browser reconnects to the next one
                    return
                yield frame
        finally:
            console.hub.unsubscribe(q)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
