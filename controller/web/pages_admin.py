"""HTML pages for configuration layers (editor with validation and diff), service catalogue and
notices, and reports (page with charts, CSV export, printable HTML)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from controller.web import configedit, i18n, notices, reports
from controller.web.auth import HTTPProblem, require
from controller.web.core_gateway import LAYERS, BadRequest, NotFound, Unavailable
from foundation.errors import ConfigError


def _console(request: Request):
    return request.app.state.console


def _render(request, name, ctx, status=200):
    from controller.web.app import render

    return render(request, name, ctx, status)


def _layer_params(src) -> tuple[str, str]:
    layer = str(src.get("layer", "fleet") or "fleet")
    if layer not in LAYERS:
        raise HTTPProblem(400, f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    target = "" if layer == "fleet" else str(src.get("target", "") or "").strip()
    return layer, target


async def config_page(request: Request) -> Response:
    request.state.who = who = require(request, "viewer")
    layer, target = _layer_params(request.query_params)
    ctx = {"layer": layer, "target": target, "layers": LAYERS, "text": "", "diff": None, "error": "",
           "message": "", "can_edit": who.can("admin"), "version": None}
    if layer == "fleet" or target:
        try:
            cur = _console(request).backend.config_get(layer, target)
            ctx["text"] = json.dumps(cur.get("values", {}), ensure_ascii=False, indent=2)
            ctx["version"] = cur.get("version")
        except (Unavailable, NotFound, BadRequest) as exc:
            ctx["error"] = str(exc)
    return _render(request, "config.html", ctx)


async def config_submit(request: Request) -> Response:
    form = await request.form()
    request.state.who = who = require(request, "admin", form_csrf=str(form.get("csrf", "")))
    layer, target = _layer_params(form)
    text = str(form.get("text", ""))
    t = i18n.for_request(request)
    console = _console(request)
    ctx = {"layer": layer, "target": target, "layers": LAYERS, "text": text, "diff": None, "error": "",
           "message": "", "can_edit": True, "version": None}
    try:
        values = configedit.parse_json_object(text)
        console.backend.config_validate(values)
        current = console.backend.config_get(layer, target)
        ctx["version"] = current.get("version")
        ctx["diff"] = configedit.diff(current.get("values", {}), values)
        if form.get("action") == "apply":
            if not ctx["diff"]:
                ctx["message"] = t("config.no_changes")
            else:
                result = console.backend.config_set(layer, target, values, who.name)  # audited by the controller
                ctx["message"] = t("config.applied", version=result.get("version", "?"))
                ctx["version"] = result.get("version")
                ctx["diff"] = None  # applied: nothing left to preview or apply until the text changes
    except (ConfigError, BadRequest) as exc:
        ctx["error"] = t("config.invalid", why=str(exc))
        return _render(request, "config.html", ctx, 422)
    except (Unavailable, NotFound) as exc:
        ctx["error"] = t("config.unavailable", why=str(exc))
        return _render(request, "config.html", ctx, 503)
    return _render(request, "config.html", ctx)


def _catalogue_services() -> list[dict]:
    try:
        from contract.catalogue import load_default_document

        return load_default_document().get("services", [])
    except (ImportError, OSError, ConfigError, ValueError):
        return []


def _notices(console) -> tuple[list[dict], str]:
    try:
        return notices.list_all(console.db), ""
    except Unavailable as exc:
        return [], str(exc)


async def services_page(request: Request, *, message: str = "", error: str = "", status: int = 200,
                        who=None) -> Response:
    # After a form POST the submit handler has already checked the caller (CSRF from the form).
    request.state.who = who = who or require(request, "viewer")
    console = _console(request)
    layer, target = _layer_params(request.query_params)
    enabled, err = None, ""
    try:
        enabled = console.backend.config_get(layer, target)["values"].get("services")
    except (Unavailable, NotFound, BadRequest) as exc:
        err = str(exc)
    listed, notices_err = _notices(console)
    # "Edit" on a notice fills the publish form with it; publishing the same id replaces it.
    editing = next((n for n in listed if n["id"] == request.query_params.get("edit")), None)
    return _render(request, "services.html", {
        "services": _catalogue_services(), "enabled": enabled, "layer": layer, "target": target,
        "layers": LAYERS, "notices": listed, "editing": editing, "can_edit": who.can("admin"),
        "message": message, "error": error or err or notices_err, "groups": notices.GROUPS,
        "langs": notices.LANGS}, status)


async def services_submit(request: Request) -> Response:
    form = await request.form()
    request.state.who = who = require(request, "admin", form_csrf=str(form.get("csrf", "")))
    console = _console(request)
    t = i18n.for_request(request)
    action = str(form.get("action", ""))
    try:
        if action == "catalogue":
            layer, target = _layer_params(form)
            known = {s["id"] for s in _catalogue_services()}
            chosen = [str(v) for v in form.getlist("service")]
            unknown = [c for c in chosen if c not in known]
            if unknown:
                raise BadRequest(f"unknown services: {', '.join(unknown)}")
            values = dict(console.backend.config_get(layer, target)["values"])
            values["services"] = chosen
            result = console.backend.config_set(layer, target, values, who.name)  # audited as config.set
            request.scope["query_string"] = f"layer={layer}&target={target}".encode()
            msg = t("services.saved", n=len(chosen), scope=result["scope"], version=result["version"])
        elif action == "publish":
            nid = str(form.get("notice_id", "")).strip()
            titles = {lang: str(form.get(f"title_{lang}", "")) for lang in notices.LANGS}
            n = notices.publish(console.db, nid, titles, [str(g) for g in form.getlist("group")],
                                console.clock())
            console.accounts.audit(who.name, "notice.publish", f"notice:{nid}", {"groups": n["groups"]})
            msg = t("services.published", id=nid)
        elif action == "withdraw":
            nid = str(form.get("notice_id", ""))
            notices.withdraw(console.db, nid)
            console.accounts.audit(who.name, "notice.withdraw", f"notice:{nid}", {})
            msg = t("services.withdrawn", id=nid)
        else:
            raise BadRequest(f"action must be catalogue, publish or withdraw, got {action!r}")
    except BadRequest as exc:
        return await services_page(request, error=str(exc), status=422, who=who)
    except NotFound as exc:
        return await services_page(request, error=str(exc), status=404, who=who)
    except Unavailable as exc:
        return await services_page(request, error=str(exc), status=503, who=who)
    return await services_page(request, message=msg, who=who)


def _report(request: Request, *, every_kiosk: bool = False):
    console = _console(request)
    try:
        period = reports.parse_period(dict(request.query_params), console.clock(), console.clock_zone)
    except reports.PeriodError as exc:
        raise HTTPProblem(400, str(exc)) from None
    return period, reports.build(console, period, every_kiosk=every_kiosk)


async def reports_page(request: Request) -> Response:
    request.state.who = require(request, "viewer")
    period, rep = _report(request)
    t = i18n.for_request(request)
    qs = urlencode({"from": period.start.isoformat(), "to": period.end.isoformat(), "site": period.site})
    sites = [s["site"] for s in _console(request).fleet.sites()]
    return _render(request, "reports.html", {"rep": rep, "period": period, "charts": reports.report_charts(rep, t),
                                             "qs": qs, "sites": sorted(sites), "printable": False})


async def report_print(request: Request) -> Response:
    request.state.who = require(request, "viewer")
    period, rep = _report(request)
    t = i18n.for_request(request)
    return _render(request, "report_print.html", {
        "rep": rep, "period": period, "charts": reports.report_charts(rep, t), "printable": True,
        "generated": t.when(_console(request).clock(), seconds=False)})


async def report_csv(request: Request) -> Response:
    require(request, "viewer")
    period, rep = _report(request, every_kiosk=True)
    name = f"kiosk-report-{period.start}-{period.end}{'-' + period.site if period.site else ''}.csv"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    # The BOM lets spreadsheet programs on Chinese Windows open UTF-8 correctly.
    return Response("\ufeff" + reports.to_csv(rep), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})


async def report_chart(request: Request) -> Response:
    require(request, "viewer")
    _, rep = _report(request)
    name = request.path_params["name"]
    svg = reports.report_charts(rep, i18n.for_request(request)).get(name)
    if svg is None:
        raise HTTPProblem(404, f"no chart {name!r} for this period (no data)")
    return Response(svg, media_type="image/svg+xml")


def routes() -> list[Route]:
    return [
        Route("/config", config_page, methods=["GET"]),
        Route("/config", config_submit, methods=["POST"]),
        Route("/services", services_page, methods=["GET"]),
        Route("/services", services_submit, methods=["POST"]),
        Route("/reports", reports_page),
        Route("/reports/print", report_print),
        Route("/reports/report.csv", report_csv),
        Route("/reports/chart/{name}.svg", report_chart),
    ]
