"""``kioskctl releases ...`` and ``kioskctl rollout ...``: published releases and staged roll-outs.

Hooked into kioskctl by ``register(subparsers, common)``. Roll-out changes go through the same
decisions and the same conditional updates as the controller's roll-out job
(:class:`controller.rollout_job.RolloutJob`), so kioskctl and the controller can act at once
without starting a wave twice. The ``cmd/update`` commands a change calls for are queued for the
running controller, which signs and sends them (the ``actions`` queue, as ``kioskctl command``);
every action is written to the fleet audit log (``kioskctl audit``).

Exit codes as everywhere in kioskctl: 0 done; 2 a refused action or usage error, named.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from controller import audit_log, ctl, fleet_clock, release_registry
from controller import rollouts as RO
from controller.rollout_job import RolloutJob
from controller.rollout_store import RolloutStore
from controller.store import enqueue_action
from controller.web import i18n, rollout_words
from foundation.errors import ConfigError, KioskError
from foundation.settings import ControllerConfig, load_toml

ACTIONS = ("approve", "pause", "resume", "abort", "retry")


def register(subparsers, common: argparse.ArgumentParser) -> None:
    r = subparsers.add_parser("releases", help="published releases: list, publish a signed bundle", parents=[common])
    rsub = r.add_subparsers(dest="sub", required=True)
    rsub.add_parser("list", parents=[common], help="every published release").set_defaults(handler=cmd_releases)
    rp = rsub.add_parser("publish", parents=[common], help="check a signed bundle and publish it (audited)")
    rp.add_argument("bundle", help="a folder from kiosk-release build + sign")
    rp.set_defaults(handler=cmd_publish)

    o = subparsers.add_parser("rollout", help="staged roll-outs of a release", parents=[common])
    osub = o.add_subparsers(dest="sub", required=True)
    oc = osub.add_parser("create", parents=[common], help="plan a roll-out and start its canary (audited)")
    oc.add_argument("version")
    oc.add_argument("--base-url",
                    help="where kiosks download releases, e.g. https://controller.example:8443/releases (default: "
                         "releases_url of --controller-config, else the address the running controller serves)")
    oc.add_argument("--controller-config", type=Path,
                    help="the controller's TOML config: its releases_url and time_zone are the defaults")
    oc.add_argument("--id", help="roll-out id (default: generated)")
    oc.add_argument("--site", action="append", default=[], help="only this site (repeatable; default: the fleet)")
    oc.add_argument("--group", action="append", default=[], help="only this group (repeatable)")
    oc.add_argument("--canary", type=int, default=1, help="kiosks in the canary wave (default 1)")
    oc.add_argument("--waves", default="10,50,100", help="cumulative percentages after the canary (default 10,50,100)")
    oc.add_argument("--approval", action="store_true", help="wait for 'rollout approve' before each wave")
    oc.add_argument("--window", help="maintenance window in local time, e.g. 02:00-05:00")
    oc.add_argument("--time-zone", help="of the window (default: the controller's time_zone)")
    oc.add_argument("--success", type=float, default=0.95, help="share of a wave that must commit (default 0.95)")
    oc.add_argument("--error", type=float, default=0.05,
                    help="failures that pause a wave, as a share of the wave's kiosks (default 0.05)")
    oc.add_argument("--error-min", type=int, default=1,
                    help="... but never fewer failed kiosks than this (default 1)")
    oc.add_argument("--timeout", type=float, default=3600.0, help="seconds a kiosk may stay silent (default 3600)")
    oc.add_argument("--max-in-flight", type=int, default=50, help="kiosks updating at once (default 50)")
    oc.add_argument("--failure-budget", type=float, default=RO.FAILURE_BUDGET,
                    help="kiosks that may run a failing release, as a share of the roll-out's kiosks (at least 1): "
                         "failed plus updating kiosks never exceed it, it pauses when failures fill it "
                         f"(default {RO.FAILURE_BUDGET})")
    oc.set_defaults(handler=cmd_create)
    ol = osub.add_parser("list", parents=[common], help="every roll-out")
    ol.set_defaults(handler=cmd_list)
    os_ = osub.add_parser("show", parents=[common], help="one roll-out: waves and each kiosk's state and reason")
    os_.add_argument("id")
    os_.set_defaults(handler=cmd_show)
    shown = [oc, ol, os_]
    for action in ACTIONS:
        a = osub.add_parser(action, parents=[common], help=f"{action} a roll-out (audited)")
        a.add_argument("id")
        a.add_argument("--reason", default="", help="why (kept in the roll-out and the audit log)")
        a.set_defaults(handler=cmd_action, action=action)
        shown.append(a)
    for p in shown:
        p.add_argument("--lang", choices=i18n.LANGS, default="en",
                       help="language of the reasons in the text output (the console's catalogues; default en)")


def _job(args: argparse.Namespace, *, base_url: str = "", time_zone: str = "Asia/Shanghai") -> RolloutJob:
    ctl._ro(args).close()  # a clear message, and no new database, when --data-dir is wrong
    db = ctl.fleet_db(args)  # the SQLite store in --data-dir, or PostgreSQL (--database, --config)

    def send(kiosk_id: str, name: str, cargs: dict[str, Any], issuer: str, ttl: float = 300.0) -> int:
        conn = db.connect()
        try:
            return enqueue_action(conn, issuer, "command", {"kiosk_id": kiosk_id, "name": name, "args": cargs,
                                                            "ttl": ttl}, time.time())
        finally:
            conn.close()

    def audit(user: str, action: str, target: str, result: str, detail: dict[str, Any]) -> None:
        conn = db.connect()
        try:
            audit_log.write(conn, user=user, action=action, target=target, detail=detail, result=result,
                            now=time.time())
        finally:
            conn.close()

    return RolloutJob(db.data_dir, RolloutStore(db), send=send, audit=audit, base_url=base_url,
                      clock=time.time, time_zone=time_zone)


def _line(r: dict[str, Any], t: i18n.Translator) -> str:
    waves = " ".join(f"{w['wave']}:{w['succeeded']}/{w['total']}" + (f"!{w['failed']}" if w["failed"] else "")
                     for w in RO.progress(r))
    return (f"{r['id']:<16} {r['version']:<10} {r['status']:<18} wave {r['wave']}  [{waves}]  "
            f"{rollout_words.plain(t, r['reason'])}").rstrip()


def _words(args: argparse.Namespace) -> i18n.Translator:
    return i18n.Translator(getattr(args, "lang", "en"))


def cmd_releases(args: argparse.Namespace) -> int:
    rels = _job(args).store.releases()
    return ctl._out(args, rels, lambda d: print("\n".join(
        f"{x['component']:<10} {x['version']:<10} {x['files']:>4} files {x['size']:>12} B  "
        f"{x['manifest_sha256'][:12]}  by {x['published_by']}" for x in d) or "no releases published"))


def cmd_publish(args: argparse.Namespace) -> int:
    job = _job(args)
    user = ctl._user(args)
    try:
        rec = release_registry.publish(job.store, job.data_dir, args.bundle, user=user, now=time.time())
    except (KioskError, OSError) as exc:
        job.audit(user, "release_publish", str(args.bundle)[:120], "refused", {"error": str(exc)[:300]})
        raise
    job.audit(user, "release_publish", f"{rec['component']}:{rec['version']}", "ok",
              {"manifest_sha256": rec["manifest_sha256"], "size": rec["size"]})
    return ctl._out(args, rec, lambda d: print(f"published {d['component']} {d['version']} "
                                               f"({d['files']} files, {d['size']} B)"))


def _defaults(args: argparse.Namespace, store: RolloutStore) -> tuple[str, str]:
    """(releases URL, time zone): the flags, else the controller config given, else what the
    controller recorded when it last ran with this data folder (its URL and its fleet zone)."""
    url, zone = args.base_url or "", args.time_zone or ""
    if args.controller_config is not None:
        cfg = load_toml(ControllerConfig, args.controller_config, {})
        url, zone = url or cfg.releases_url, zone or cfg.time_zone
    if not url:
        url = store.setting("releases_url")
    if not zone:
        conn = ctl._ro(args)
        try:
            zone = fleet_clock.recorded(conn).name
        finally:
            conn.close()
    if not url:
        raise ConfigError("no releases URL: set releases_url in the controller config (--controller-config), "
                          "start the controller once, or pass --base-url", field="--base-url")
    return url, zone


def _window(args: argparse.Namespace, zone: str) -> RO.Window | None:
    if not args.window:
        return None
    start, sep, end = args.window.partition("-")
    if not sep:
        raise ConfigError(f"expected HH:MM-HH:MM, got {args.window!r}", field="--window")
    return RO.Window(start, end, zone)


def cmd_create(args: argparse.Namespace) -> int:
    try:
        waves = [float(w) for w in args.waves.split(",")]
    except ValueError:
        raise ConfigError(f"expected numbers like 10,50,100, got {args.waves!r}", field="--waves") from None
    url, zone = _defaults(args, _job(args).store)
    job = _job(args, base_url=url, time_zone=zone)
    r = job.create(
        version=args.version, user=ctl._user(args), rollout_id=args.id, sites=args.site, groups=args.group,
        canary=args.canary, waves=waves, approval=args.approval, window=_window(args, zone),
        success_threshold=args.success, error_threshold=args.error, error_min=args.error_min, timeout_s=args.timeout,
        max_in_flight=args.max_in_flight, failure_budget=args.failure_budget)
    return ctl._out(args, RO.public(r), lambda d: print(_line(r, _words(args))))


def cmd_list(args: argparse.Namespace) -> int:
    items = _job(args).store.list()
    return ctl._out(args, [{k: v for k, v in RO.public(r).items() if k != "kiosks"} for r in items],
                    lambda d: print("\n".join(_line(r, _words(args)) for r in items) or "no roll-outs"))


def cmd_show(args: argparse.Namespace) -> int:
    r = _job(args).store.get(args.id)
    if r is None:
        raise ConfigError(f"no roll-out {args.id!r}", field="id")

    def human(_d):
        t = _words(args)
        print(_line(r, t))
        if r.get("failure_budget") is not None:
            print("  " + rollout_words.budget(t, RO.budget(r)))
        for kid, k in sorted(r["kiosks"].items(), key=lambda kv: (kv[1]["wave"], kv[0])):
            print(f"  wave {k['wave']}  {kid:<20} {k['state']:<12} {rollout_words.plain(t, k['reason'])}".rstrip())
    return ctl._out(args, RO.public(r), human)


def cmd_action(args: argparse.Namespace) -> int:
    r = _job(args).action(args.id, args.action, ctl._user(args), args.reason)
    return ctl._out(args, RO.public(r), lambda d: print(_line(r, _words(args))))
