"""Releases and roll-outs over HTTP: the release files kiosks download, and the REST API.

``routes(job)`` serves, next to the console (``kiosk-controller`` passes them as extra routes):

- ``GET /releases/{component}/{version}/manifest.json`` and ``.../objects/{sha256}``: the published
  bundle (controller/release_registry.py), with HTTP Range so a kiosk resumes a dropped download,
  every download together within the fleet-wide rate (controller/web/release_files.py); a file
  another instance published is first copied from the fleet database (controller/release_local.py);
- ``/api/v1/releases``, ``/api/v1/rollouts`` (GET viewer, POST operator),
  ``/api/v1/rollouts/{id}`` and ``POST /api/v1/rollouts/{id}/{action}`` (approve, pause, resume,
  abort, retry; operator). Every change is audited by the roll-out job.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract import release as R
from controller import release_local, release_registry, release_share, sql_dialect
from controller import rollouts as RO
from controller.store_pg import StoreUnavailable
from controller.web import release_files
from controller.web import release_uploads as uploads
from controller.web.api import body_json
from controller.web.auth import HTTPProblem, require
from foundation.errors import ConfigError, KioskError

log = logging.getLogger(__name__)

ACTIONS = ("approve", "pause", "resume", "abort", "retry")
_SHA = re.compile(r"^[0-9a-f]{64}$")
CREATE_FIELDS = {"version": str, "id": str, "sites": list, "groups": list, "canary": int, "waves": list,
                 "approval": bool, "window": dict, "success_threshold": float, "error_threshold": float,
                 "error_min": int, "timeout_s": float, "max_in_flight": int, "failure_budget": float}


def _public(r: dict[str, Any], *, kiosks: bool = True) -> dict[str, Any]:
    out = RO.public(r)
    if not kiosks:
        out.pop("kiosks")
    return out


def routes(job) -> list[Route]:
    """The routes of ``job`` (a :class:`controller.rollout_job.RolloutJob`): its store, and its
    ``downloads`` limit, the one bucket every release download this controller serves takes from."""

    async def release_file(request: Request) -> Response:
        comp, version, rest = (request.path_params[k] for k in ("component", "version", "rest"))
        try:
            R.parse_version(version)
        except KioskError:
            raise HTTPProblem(404, "no such release") from None
        rec = job.store.release(version, comp) if comp in R.COMPONENTS else None
        if rec is None:
            raise HTTPProblem(404, f"no published {comp} release {version}")
        base = release_registry.release_dir(job.data_dir, comp, version)
        sub, _, sha = rest.partition("/")
        if rest == R.MANIFEST_FILE:
            name, path, media = rest, base / rest, "application/json"
        elif sub == R.OBJECTS_DIR and _SHA.match(sha):
            name, path, media = sha, base / sub / sha, "application/octet-stream"
        else:
            raise HTTPProblem(404, "no such file in this release")
        if not path.is_file():  # published on another instance: copied from the fleet database, checked
            path = await run_in_threadpool(_local_file, job, rec, name)
        return release_files.serve(path, request, job.downloads, media)

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
        except uploads.TooLarge as exc:
            raise HTTPProblem(413, str(exc)) from None

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

    p = "/api/v1"
    return [
        Route("/releases/{component}/{version}/{rest:path}", release_file),
        Route(f"{p}/releases", releases, methods=["GET", "POST"]),
        Route(f"{p}/releases/uploads/{{sha256}}", upload, methods=["GET", "PUT"]),
        Route(f"{p}/rollouts", rollouts, methods=["GET", "POST"]),
        Route(f"{p}/rollouts/{{rollout_id}}", rollout),
        Route(f"{p}/rollouts/{{rollout_id}}/{{action}}", rollout_action, methods=["POST"]),
    ]


def _local_file(job, rec: dict[str, Any], name: str) -> Path:
    try:
        return job.local_releases.file(rec, name)
    except release_local.NotHere as exc:
        raise HTTPProblem(404, str(exc)) from None
    except (release_share.ShareError, R.ReleaseRejected) as exc:  # damaged in the database (or on this disk)
        log.error("release file not served: %s", exc)
        raise HTTPProblem(502, str(exc)) from None
    except (StoreUnavailable, *sql_dialect.unavailable_errors()) as exc:
        if sql_dialect.connection_lost(exc):
            job.store.reopen()  # this thread's connection: the next request opens a new one
        raise HTTPProblem(503, f"the fleet database is unavailable: {str(exc)[:200]}") from None


def _outcome(state: str) -> str:
    return ("succeeded" if state == "committed" else "failed" if state in RO.FAILED_KIOSK
            else "open" if state in RO.OPEN_KIOSK else state)  # pending, skipped


def render_metrics(job) -> str:
    """Roll-outs for the console's ``/metrics`` (Prometheus text): roll-outs by status, their
    kiosks by update state, the open roll-outs' waves, waves started, the job's commands and the
    release bytes served."""
    store = job.store
    lines: list[str] = []

    def metric(name: str, kind: str, text: str, samples: list[tuple[str, object]]) -> None:
        lines.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])
        lines.extend(f"{name}{labels} {value}" for labels, value in samples)

    statuses = store.status_counts()
    metric("kiosk_rollouts", "gauge", "Roll-outs by status.",
           [(f'{{status="{s}"}}', statuses.get(s, 0)) for s in RO.STATUSES])
    metric("kiosk_rollout_kiosks", "gauge", "Kiosks of roll-outs by roll-out status and the kiosk's update state.",
           [(f'{{status="{st}",state="{state}"}}', n) for st, state, n in store.kiosk_states()])
    waves: dict[tuple[str, int, str], int] = {}
    for rid, wave, state, n in store.open_waves():
        key = (rid, wave, _outcome(state))
        waves[key] = waves.get(key, 0) + n
    metric("kiosk_rollout_wave_kiosks", "gauge", "Kiosks of the unfinished roll-outs by wave and outcome.",
           [(f'{{rollout="{rid}",wave="{w}",outcome="{o}"}}', n) for (rid, w, o), n in sorted(waves.items())])
    metric("kiosk_rollout_waves_started_total", "counter", "Waves started by all roll-outs (canaries included).",
           [("", store.waves_started())])
    for name in ("updates_sent", "rollbacks_sent", "states_received"):
        metric(f"kiosk_rollout_{name}_total", "counter",
               f"Roll-out job of this controller: {name.replace('_', ' ')} since it started.",
               [("", job.metrics[name])])
    dl = job.downloads
    metric("kiosk_release_download_bytes_total", "counter", "Release file bytes served to kiosks since start.",
           [("", dl.bytes_served)])
    metric("kiosk_release_downloads_total", "counter", "Release file downloads (requests) served since start.",
           [("", dl.downloads)])
    metric("kiosk_release_files_materialised_total", "counter", "Release files this instance copied from the "
           "fleet database (published on another instance) since start.", [("", job.local_releases.materialised)])
    return "\n".join(lines) + "\n"


def openapi_paths(op, path_param) -> dict[str, Any]:
    """This API's entries of /openapi.json (``op`` and ``path_param`` are controller.web.openapi's)."""
    rid = path_param("rollout_id", "the roll-out id")
    create = {"type": "object", "required": ["version"], "properties": {
        "version": {"type": "string"}, "id": {"type": "string"}, "sites": {"type": "array"},
        "groups": {"type": "array"}, "canary": {"type": "integer"}, "waves": {"type": "array"},
        "approval": {"type": "boolean"}, "success_threshold": {"type": "number"},
        "error_threshold": {"type": "number"}, "error_min": {"type": "integer"}, "timeout_s": {"type": "number"},
        "max_in_flight": {"type": "integer"},
        "failure_budget": {"type": "number", "description": "kiosks that may run a failing release, as a share of "
                           f"the roll-out's kiosks, at least 1 (default {RO.FAILURE_BUDGET})"},
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
