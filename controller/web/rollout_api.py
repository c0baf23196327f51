"""Releases and roll-outs over HTTP: the release files kiosks download, and the REST API.

``routes(job)`` serves, next to the console (``kiosk-controller`` passes them as extra routes):

- ``GET /releases/{component}/{version}/manifest.json`` and ``.../objects/{sha256}``: the published
  bundle (controller/release_registry.py), with HTTP Range (Starlette's FileResponse) so a kiosk
  resumes a dropped download;
- ``/api/v1/releases``, ``/api/v1/rollouts`` (GET viewer, POST operator),
  ``/api/v1/rollouts/{id}`` and ``POST /api/v1/rollouts/{id}/{action}`` (approve, pause, resume,
  abort, retry; operator). Every change is audited by the roll-out job.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from contract import release as R
from controller import release_registry
from controller import rollouts as RO
from controller.web import release_uploads as uploads
from controller.web.api import body_json
from controller.web.auth import HTTPProblem, require
from foundation.errors import ConfigError, KioskError

ACTIONS = ("approve", "pause", "resume", "abort", "retry")
_SHA = re.compile(r"^[0-9a-f]{64}$")
CREATE_FIELDS = {"version": str, "id": str, "sites": list, "groups": list, "canary": int, "waves": list,
                 "approval": bool, "window": dict, "success_threshold": float, "error_threshold": float,
                 "error_min": int, "timeout_s": float, "max_in_flight": int}


def _public(r: dict[str, Any], *, kiosks: bool = True) -> dict[str, Any]:
    out = {**r, "progress": RO.progress(r)}
    if not kiosks:
        out.pop("kiosks")
    return out


def routes(job) -> list[Route]:
    async def release_file(request: Request) -> Response:
        comp, version, rest = (request.path_params[k] for k in ("component", "version", "rest"))
        try:
            R.parse_version(version)
        except KioskError:
            raise HTTPProblem(404, "no such release") from None
        if comp not in R.COMPONENTS or job.store.release(version, comp) is None:
            raise HTTPProblem(404, f"no published {comp} release {version}")
        base = release_registry.release_dir(job.data_dir, comp, version)
        if rest == R.MANIFEST_FILE:
            return FileResponse(base / R.MANIFEST_FILE, media_type="application/json")
        sub, _, sha = rest.partition("/")
        if sub != R.OBJECTS_DIR or not _SHA.match(sha) or not (base / sub / sha).is_file():
            raise HTTPProblem(404, "no such file in this release")
        return FileResponse(base / sub / sha, media_type="application/octet-stream")

    async def releases(request: Request) -> Response:
        if request.method == "GET":
            require(request, "viewer")
            return JSONResponse({"items": job.store.releases()})
        who = require(request, "admin")  # kiosk-release publish: the manifest, once its files are uploaded
        doc = await body_json(request)
        try:
            rec = await run_in_threadpool(uploads.publish, job, doc, who.name)
        except (KioskError, OSError) as exc:  # ReleaseRejected, ConfigError
            job.audit(who.name, "release_publish", "upload", "refused", {"error": str(exc)[:300]})
            raise HTTPProblem(422, str(exc)) from None
        return JSONResponse(rec, status_code=201)

    async def upload(request: Request) -> Response:
        require(request, "admin")
        sha = request.path_params["sha256"]
        if not _SHA.match(sha):
            raise HTTPProblem(404, "uploads are named by their SHA-256 (64 hex digits)")
        if request.method == "GET":
            return JSONResponse({"size": uploads.size(job.data_dir, sha)})
        try:
            offset = int(request.query_params.get("offset", ""))
        except ValueError:
            raise HTTPProblem(422, "offset: the byte offset of this piece is required") from None
        data = await request.body()  # at most the console's body limit (1 MiB) per piece
        try:
            return JSONResponse({"size": await run_in_threadpool(uploads.append, job.data_dir, sha, offset, data)})
        except uploads.WrongOffset as exc:
            return JSONResponse({"error": str(exc), "size": exc.size}, status_code=409)

    async def rollouts(request: Request) -> Response:
        if request.method == "GET":
            require(request, "viewer")
            return JSONResponse({"items": [_public(r, kiosks=False) for r in job.store.list()]})
        who = require(request, "operator")
        body = await body_json(request)
        unknown = sorted(set(body) - set(CREATE_FIELDS))
        if unknown:
            raise HTTPProblem(422, f"unknown fields {unknown} (known: {', '.join(CREATE_FIELDS)})")
        for key, value in body.items():
            typ = CREATE_FIELDS[key]
            number = typ is float and isinstance(value, int)
            if isinstance(value, bool) != (typ is bool) or not (isinstance(value, typ) or number):
                raise HTTPProblem(422, f"{key} must be {typ.__name__}")
        if "version" not in body:
            raise HTTPProblem(422, "version is required")
        opts = {k: v for k, v in body.items() if k not in ("version", "id", "window")}
        try:
            window = RO.Window(**{"time_zone": job.time_zone, **body["window"]}) if "window" in body else None
            r = job.create(version=body["version"], user=who.name, rollout_id=body.get("id"), window=window, **opts)
        except (ConfigError, TypeError) as exc:
            raise HTTPProblem(422, str(exc)) from None
        return JSONResponse(_public(r), status_code=201)

    async def rollout(request: Request) -> Response:
        require(request, "viewer")
        r = job.store.get(request.path_params["rollout_id"])
        if r is None:
            raise HTTPProblem(404, "no such roll-out")
        return JSONResponse(_public(r))

    async def rollout_action(request: Request) -> Response:
        who = require(request, "operator")
        action = request.path_params["action"]
        if action not in ACTIONS:
            raise HTTPProblem(404, f"action must be one of {', '.join(ACTIONS)}")
        rid = request.path_params["rollout_id"]
        if job.store.get(rid) is None:
            raise HTTPProblem(404, "no such roll-out")
        reason = ""
        if request.headers.get("content-type", "").startswith("application/json"):
            reason = str((await body_json(request)).get("reason", ""))[:300]
        try:
            r = job.action(rid, action, who.name, reason)
        except ConfigError as exc:
            raise HTTPProblem(409, str(exc)) from None
        return JSONResponse(_public(r))

    async def metrics(request: Request) -> Response:
        require(request, "viewer")  # as /metrics: Prometheus sends a viewer API token
        return Response(render_metrics(job.store.list(), job.metrics),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    p = "/api/v1"
    return [
        Route("/metrics/rollouts", metrics),
        Route("/releases/{component}/{version}/{rest:path}", release_file),
        Route(f"{p}/releases", releases, methods=["GET", "POST"]),
        Route(f"{p}/releases/uploads/{{sha256}}", upload, methods=["GET", "PUT"]),
        Route(f"{p}/rollouts", rollouts, methods=["GET", "POST"]),
        Route(f"{p}/rollouts/{{rollout_id}}", rollout),
        Route(f"{p}/rollouts/{{rollout_id}}/{{action}}", rollout_action, methods=["POST"]),
    ]


def render_metrics(items: list[dict[str, Any]], counters: dict[str, int]) -> str:
    """Prometheus text: kiosks per roll-out, wave and state; roll-outs by status; the job's counters."""
    lines = ["# HELP kiosk_rollout_kiosks Kiosks of a roll-out by wave and state", "# TYPE kiosk_rollout_kiosks gauge"]
    for r in items:
        if r["status"] in ("completed", "aborted") and r is not items[0]:
            continue  # finished roll-outs stay out of the series, except the newest
        for w in RO.progress(r):
            for state in ("succeeded", "failed", "open", "pending", "skipped"):
                lines.append(f'kiosk_rollout_kiosks{{rollout="{r["id"]}",version="{r["version"]}",wave="{w["wave"]}",'
                             f'state="{state}"}} {w[state]}')
    lines += ["# HELP kiosk_rollouts Roll-outs by status", "# TYPE kiosk_rollouts gauge"]
    for status in RO.STATUSES:
        lines.append(f'kiosk_rollouts{{status="{status}"}} {sum(r["status"] == status for r in items)}')
    for name, value in sorted(counters.items()):
        lines += [f"# HELP kiosk_rollout_{name}_total Roll-out job: {name.replace('_', ' ')}",
                  f"# TYPE kiosk_rollout_{name}_total counter", f"kiosk_rollout_{name}_total {value}"]
    return "\n".join(lines) + "\n"


def openapi_paths(op, path_param) -> dict[str, Any]:
    """This API's entries of /openapi.json (``op`` and ``path_param`` are controller.web.openapi's)."""
    rid = path_param("rollout_id", "the roll-out id")
    create = {"type": "object", "required": ["version"], "properties": {
        "version": {"type": "string"}, "id": {"type": "string"}, "sites": {"type": "array"},
        "groups": {"type": "array"}, "canary": {"type": "integer"}, "waves": {"type": "array"},
        "approval": {"type": "boolean"}, "success_threshold": {"type": "number"},
        "error_threshold": {"type": "number"}, "error_min": {"type": "integer"}, "timeout_s": {"type": "number"}, "max_in_flight": {"type": "integer"},
        "window": {"type": "object", "properties": {"start": {"type": "string"}, "end": {"type": "string"},
                                                    "time_zone": {"type": "string"}}}}}
    return {
        "/api/v1/releases": {
            "get": op("Published releases", "viewer", ok="items"),
            "post": op("Publish a release: the signed manifest, once every file is uploaded (kiosk-release "
                       "publish); checked like a kiosk checks it; audited", "admin", body={"type": "object"},
                       status="201")},
        "/api/v1/releases/uploads/{sha256}": {
            "get": op("How many bytes of this file the controller has (resume)", "admin",
                      params=[path_param("sha256", "the file's SHA-256")], ok="size"),
            "put": op("Append a piece (body: bytes) at ?offset=N; 409 with size when the offset is not where "
                      "the controller is", "admin", params=[path_param("sha256", "the file's SHA-256")],
                      ok="size", errors=("409",))},
        "/api/v1/rollouts": {
            "get": op("Roll-outs with progress per wave", "viewer", ok="items"),
            "post": op("Plan a roll-out and start its canary; audited", "operator", body=create, status="201")},
        "/api/v1/rollouts/{rollout_id}": {"get": op("One roll-out: waves, each kiosk's state and reason", "viewer",
                                                    params=[rid])},
        "/api/v1/rollouts/{rollout_id}/{action}": {"post": op(
            "approve, pause, resume, abort (kiosks on trial roll back) or retry (the failed only); audited",
            "operator", params=[rid, {"name": "action", "in": "path", "required": True,
                                      "schema": {"type": "string", "enum": list(ACTIONS)}}],
            body={"type": "object", "properties": {"reason": {"type": "string"}}}, errors=("409",))},
    }
