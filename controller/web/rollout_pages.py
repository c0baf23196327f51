"""The console's roll-out pages: ``/rollouts`` (releases, roll-outs with progress per wave) and
``/rollouts/{id}`` (each kiosk's state and reason, with approve/pause/resume/abort/retry for
operators). Reads and actions go through the roll-out job, as the REST API does. Both pages
follow the ``rollout`` events of the console's live stream (controller/web/rollout_live.py):
wave counts, status and each kiosk's state and reason change without a reload."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from controller import rollouts as RO
from controller.web import i18n, rollout_words
from controller.web.auth import HTTPProblem, require
from controller.web.rollout_api import ACTIONS
from foundation.errors import ConfigError


def _words(request: Request) -> dict:
    """What the live script writes into the page, in the page's language."""
    t = i18n.for_request(request)
    return {"live": t("fleet.live"), "reconnecting": t("fleet.reconnecting"),
            "current_wave": t("rollouts.current_wave", wave="{wave}"), "wave_title": t("rollouts.wave_title", wave="{wave}"),
            "status": {s: t(f"rollouts.status.{s}") for s in RO.STATUSES},
            "kiosk_state": {s: t(f"rollouts.kiosk_state.{s}") for s in RO.KIOSK_STATES}}


def _reason(request: Request):
    """A reason (code and params) as the page shows it, in the page's language."""
    t = i18n.for_request(request)
    return lambda reason: rollout_words.html(t, reason)


def _refusal(request: Request, action: str, exc: ConfigError, status: str) -> str:
    """Why an action was not done, in the page's language (the decisions name the field they refused on)."""
    t = i18n.for_request(request)
    if exc.field == "kiosks":
        return t("rollouts.refused_nothing_to_retry")
    return t("rollouts.refused", action=t(f"rollouts.action.{action}"), status=t(f"rollouts.status.{status}"))


def routes(job) -> list[Route]:
    from controller.web.app import render

    async def index(request: Request) -> Response:
        request.state.who = require(request, "viewer")
        items = [RO.public(r) for r in await run_in_threadpool(job.store.list)]
        return render(request, "rollouts.html", {"releases": await run_in_threadpool(job.store.releases),
                                                 "rollouts": items, "words": _words(request),
                                                 "reason": _reason(request)})

    async def show(request: Request, error: str = "", status: int = 200) -> Response:
        r = await run_in_threadpool(job.store.get, request.path_params["rollout_id"])
        if r is None:
            raise HTTPProblem(404, "no such roll-out")
        return render(request, "rollout.html", {"words": _words(request), "reason": _reason(request),
            "r": RO.public(r), "budget": lambda b: rollout_words.budget(i18n.for_request(request), b), "error": error, "actions": ACTIONS,
            "can_act": request.state.who.can("operator"),
            "kiosks": sorted(r["kiosks"].items(), key=lambda kv: (kv[1]["wave"], kv[0]))}, status)

    async def one(request: Request) -> Response:
        request.state.who = require(request, "viewer")
        return await show(request)

    async def act(request: Request) -> Response:
        form = await request.form()
        request.state.who = who = require(request, "operator", form_csrf=str(form.get("csrf", "")))
        action, rid = request.path_params["action"], request.path_params["rollout_id"]
        if action not in ACTIONS or await run_in_threadpool(job.store.get, rid) is None:
            raise HTTPProblem(404, "no such roll-out or action")
        try:
            await run_in_threadpool(job.action, rid, action, who.name, str(form.get("reason", ""))[:300])
        except ConfigError as exc:
            now = await run_in_threadpool(job.store.get, rid)
            return await show(request, _refusal(request, action, exc, now["status"] if now else ""), 409)
        return RedirectResponse(f"/rollouts/{rid}", status_code=303)

    return [Route("/rollouts", index), Route("/rollouts/{rollout_id}", one),
            Route("/rollouts/{rollout_id}/{action}", act, methods=["POST"])]
