"""``kioskctl``: the operator's command line for the fleet controller.

Reads go straight to the fleet database (read-only): the SQLite store in ``--data-dir``, or the
PostgreSQL database given by ``--database`` or by the controller's ``--config`` file. Actions (acknowledge an
alarm, set config, send a command, groups) are queued in the store's ``actions`` table; the
running controller carries them out, audits them and writes the result, which kioskctl waits
for. Sites and the queue at a site's window: ``controller.ctl_sites``.
Exit codes: 0 done, 1 the command/action did not succeed, 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract import signing
from controller import commands as cmds
from controller import fleet_clock, sql_dialect, store_reads
from controller.fleet_clock import FleetClock
from controller.fleet_db import FleetDb
from controller.store import StoreError, enqueue_action
from foundation.errors import ConfigError, KioskError
from foundation.settings import ControllerConfig, load_toml


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                        help="the controller's data folder (default ./controller-data)")
    common.add_argument("--database", default=argparse.SUPPRESS, metavar="postgresql://...",
                        help="the fleet database when the controller runs on PostgreSQL (its 'database' setting; "
                             "a password is better kept in ~/.pgpass or PGPASSWORD than here)")
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                        help="the controller's TOML config file: its data_dir and database (flags override them)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable JSON output")
    common.add_argument("--user", default=argparse.SUPPRESS,
                        help="operator name for the audit log (default $KIOSKCTL_USER or your login)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    p = argparse.ArgumentParser(prog="kioskctl", description="Operate the kiosk fleet from the command line.",
                                parents=[common])
    sub = p.add_subparsers(dest="command", required=True)
    st = sub.add_parser("status", help="list the kiosks with state and last seen", parents=[common])
    st.add_argument("--state", help="only kiosks in this state (online, offline, stale)")

    k = sub.add_parser("kiosks", help="list kiosks or show one", parents=[common])
    ksub = k.add_subparsers(dest="sub", required=True)
    kl = ksub.add_parser("list", parents=[common], help="list kiosks (filters, pages)")
    for opt in ("--state", "--site", "--group", "--search"):
        kl.add_argument(opt)
    kl.add_argument("--offset", type=int, default=0)
    kl.add_argument("--limit", type=int, default=100)
    ksub.add_parser("show", parents=[common], help="one kiosk in detail").add_argument("kiosk_id")

    a = sub.add_parser("alarms", help="active alarms, history, acknowledge", parents=[common])
    asub = a.add_subparsers(dest="sub", required=True)
    al = asub.add_parser("list", parents=[common], help="active alarms (--history for cleared ones too)")
    al.add_argument("--history", action="store_true")
    al.add_argument("--kiosk")
    al.add_argument("--severity")
    al.add_argument("--limit", type=int, default=100)
    ack = asub.add_parser("ack", parents=[common], help="acknowledge an alarm")
    ack.add_argument("alarm_id", type=int)
    ack.add_argument("--note", default="", help="what was done or why (kept in the audit log)")

    e = sub.add_parser("events", help="recent events", parents=[common])
    e.add_argument("--kiosk")
    e.add_argument("--type")
    e.add_argument("--limit", type=int, default=50)

    t = sub.add_parser("telemetry", help="a kiosk's downsampled telemetry history", parents=[common])
    t.add_argument("kiosk_id")
    t.add_argument("--hours", type=float, default=24.0)

    c = sub.add_parser("config", help="desired config layers: get, set, diff", parents=[common])
    csub = c.add_subparsers(dest="sub", required=True)
    csub.add_parser("get", parents=[common], help="all layers, or one scope").add_argument("scope", nargs="?")
    cs = csub.add_parser("set", parents=[common], help="replace a layer: fleet, site:NAME or kiosk:ID")
    cs.add_argument("scope")
    cs.add_argument("body", help='the layer as JSON, for example \'{"volume": 60}\' (or @file.json)')
    cd = csub.add_parser("diff", parents=[common], help="desired versus reported")
    cd.add_argument("kiosk_id", nargs="?")
    cd.add_argument("--out-of-sync", action="store_true")

    m = sub.add_parser("command", help="send a signed command, show or list commands", parents=[common])
    msub = m.add_subparsers(dest="sub", required=True)
    ms = msub.add_parser("send", parents=[common], help=f"send a command ({', '.join(cmds.BUILT_IN)})")
    ms.add_argument("kiosk_id")
    ms.add_argument("name")
    ms.add_argument("--args", default="{}", help="arguments as a JSON object")
    ms.add_argument("--ttl", type=float, default=cmds.DEFAULT_TTL, help="seconds until it expires (300)")
    ms.add_argument("--timeout", type=float, default=cmds.DEFAULT_TIMEOUT,
                    help="seconds to wait for the kiosk's result once sent (60)")
    ms.add_argument("--wait", action="store_true", help="wait for and print the final result")
    msub.add_parser("show", parents=[common], help="one command").add_argument("command_id")
    mls = msub.add_parser("list", parents=[common], help="recent commands")
    mls.add_argument("--kiosk")
    mls.add_argument("--status")
    mls.add_argument("--limit", type=int, default=50)

    g = sub.add_parser("group", help="add kiosks to a group or remove them", parents=[common])
    g.add_argument("action", choices=("add", "remove"))
    g.add_argument("group")
    g.add_argument("kiosks", nargs="+")

    au = sub.add_parser("audit", help="the audit log of operator actions", parents=[common])
    au.add_argument("--by", dest="by_user")
    au.add_argument("--action")
    au.add_argument("--limit", type=int, default=50)

    sub.add_parser("public-key", help="print the controller's command-signing public key", parents=[common])
    from controller import ctl_accounts  # user ..., api-token ... (console accounts, issue 7)
    ctl_accounts.register(sub)
    from controller import ctl_tokens  # token issue ... (enrolment tokens, issue 8)

    ctl_tokens.register(sub)
    from controller import ctl_sites  # sites list|set, queue next|show

    ctl_sites.register(sub, common)
    from controller import ctl_rollouts  # releases list|publish, rollout create|list|show|approve|...

    ctl_rollouts.register(sub, common)
    mv = sub.add_parser("move-store", parents=[common],
                        help="move the stopped controller's fleet store from SQLite to PostgreSQL, every row checked")
    mv.add_argument("--to", required=True, metavar="postgresql://...", help="an empty PostgreSQL database")
    mv.set_defaults(handler=cmd_move_store)
    return p


def cmd_move_store(args: argparse.Namespace) -> int:
    from controller import store_move

    moved = store_move.move(args.data_dir, args.to)
    if args.json:
        print(json.dumps({"moved": moved}))
    else:
        for table, n in moved.items():
            print(f"{table:<18} {n:>10} rows moved and checked")
        print("done: set the controller's database setting to it; the console, kioskctl (--database or "
              "--config) and the accounts use it from then on (docs/scale-out.md)")
    return 0


MAX_NOTE = 500  # an acknowledgement note is a line or two for the audit log


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


_zone: list[FleetClock] = []  # the fleet's clock, read from the store once (the controller records it)


def _when(ts: float | None) -> str:
    """A stored UTC time in the fleet's time zone, as the console shows it."""
    return (_zone[0] if _zone else FleetClock()).show(ts)


def _out(args: argparse.Namespace, data: Any, human) -> int:
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        human(data)
    return 0


def fleet_db(args: argparse.Namespace) -> FleetDb:
    """The fleet database the flags name: ``--config``'s ``data_dir`` and ``database``, overridden
    by ``--data-dir`` and ``--database``; else the SQLite store in ``--data-dir``."""
    given_dir = getattr(args, "data_dir_given", None)
    database = getattr(args, "database", None)
    config = getattr(args, "config", None)
    if config is not None:
        cfg = load_toml(ControllerConfig, config, {"data_dir": str(given_dir) if given_dir else None,
                                                   "database": database})
        return FleetDb.from_config(cfg)
    return FleetDb(Path(args.data_dir), database or "")


def _ro(args: argparse.Namespace):
    conn = fleet_db(args).connect(readonly=True)
    if not _zone:
        _zone.append(fleet_clock.recorded(conn))
    return conn


def cmd_status(args: argparse.Namespace) -> int:
    kiosks = store_reads.list_kiosks(_ro(args), state=args.state, limit=1_000_000)["items"]
    now = time.time()
    if args.json:
        return _out(args, [{k: x[k] for k in ("kiosk_id", "state", "reason", "mode", "site", "last_seen",
                                                "state_since")} for x in kiosks], None)
    if not kiosks:
        print("no kiosks registered yet")
        return 0
    print(f"{'KIOSK':<24} {'STATE':<8} {'MODE':<14} {'LAST SEEN':<10} REASON")
    for k in kiosks:
        print(f"{k['kiosk_id']:<24} {k['state']:<8} {k['mode'] or '-':<14} "
              f"{_age(now - k['last_seen']):<10} {k['reason']}")
    online = sum(1 for k in kiosks if k["state"] == "online")
    print(f"{online}/{len(kiosks)} online")
    return 0


def cmd_kiosks(args: argparse.Namespace) -> int:
    conn = _ro(args)
    if args.sub == "show":
        detail = store_reads.kiosk_detail(conn, args.kiosk_id)
        if detail is None:
            raise KioskError(f"no kiosk {args.kiosk_id!r}")
        return _out(args, detail, _print_kiosk)
    page = store_reads.list_kiosks(conn, state=args.state, site=args.site, group=args.group, search=args.search,
                               offset=args.offset, limit=args.limit)

    def human(p: dict) -> None:
        now = time.time()
        print(f"{'KIOSK':<24} {'STATE':<8} {'MODE':<14} {'SITE':<16} {'LAST SEEN':<10} DEVICES")
        for k in p["items"]:
            devs = " ".join(f"{n}:{d.get('state')}" for n, d in sorted(k["devices"].items()))
            print(f"{k['kiosk_id']:<24} {k['state']:<8} {k['mode'] or '-':<14} {k['site']:<16} "
                  f"{_age(now - k['last_seen']):<10} {devs}")
        print(f"{len(p['items'])} of {p['total']} kiosks (offset {args.offset})")
    return _out(args, page, human)


def _text(value: Any, unit: str = "") -> str:
    """A stored value as an operator reads it: "-" for nothing, never Python's None or dict repr."""
    if value is None or value == "" or value == {} or value == "None":
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_text(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.1f}{unit}"
    return f"{value}{unit}"


def _print_kiosk(d: dict) -> None:
    print(f"kiosk {d['kiosk_id']}: {d['state']} {d['reason']} since {_when(d['state_since'])}".replace("  ", " "))
    versions = ", ".join(f"{k} {v}" for k, v in (d["versions"] or {}).items()) or "-"
    print(f"  site {d['site']}  mode {_text(d['mode'])}  boot {_text(d['boot_id'])}  versions {versions}")
    print(f"  groups {', '.join(d['groups']) or '-'}  last seen {_when(d['last_seen'])}")
    for name, dev in sorted(d["devices"].items()):
        print(f"  device {name}: {dev.get('state')} {dev.get('fault') or ''} "
              f"{'available' if dev['available'] else 'UNAVAILABLE'} {dev.get('required_action') or ''}")
    t = d["telemetry"]
    if t:
        print(f"  telemetry cpu {_text(t.get('cpu'), '%')} mem {_text(t.get('memory'), '%')} "
              f"disk {_text(t.get('disk'), '%')} temp {_text(t.get('temperature'), ' °C')} "
              f"queue {_text(t.get('queue_depth'))}")
    for a in d["alarms"]:
        print(f"  ALARM #{a['id']} {a['severity']} {a['rule']} {a['message']}")
    c = d["config"]
    if c["reported_version"] is None:
        print(f"  config desired v{c['desired_version']}, nothing reported yet")
    else:
        print(f"  config desired v{c['desired_version']} reported v{c['reported_version']} "
              f"{'in sync' if c['in_sync'] else 'OUT OF SYNC ' + c['reason']}")


def cmd_alarms(args: argparse.Namespace) -> int:
    if args.sub == "ack":
        note = args.note.strip()
        if len(note) > MAX_NOTE:
            raise ConfigError(f"at most {MAX_NOTE} characters, got {len(note)}", field="--note")
        return _action(args, "ack", {"alarm_id": args.alarm_id, "note": note},
                       lambda r: print(f"alarm {args.alarm_id} acknowledged" if r["acked"]
                                       else f"alarm {args.alarm_id} was already acknowledged"))
    page = store_reads.alarms(_ro(args), active=None if args.history else True, kiosk_id=args.kiosk,
                          severity=args.severity, limit=args.limit)

    def human(p: dict) -> None:
        if not p["items"]:
            print("no alarms")
        for a in p["items"]:
            state = "cleared " + _when(a["cleared_at"]) if a["cleared_at"] else "ACTIVE"
            ack = f"acked by {a['acked_by']}" if a["acked_by"] else "not acknowledged"
            print(f"#{a['id']:<6} {a['severity']:<9} {a['kiosk_id']:<20} {a['rule']:<18} {_when(a['raised_at'])} "
                  f"{state:<28} {ack}  {a['message']}")
    return _out(args, page, human)


def cmd_events(args: argparse.Namespace) -> int:
    page = store_reads.events(_ro(args), kiosk_id=args.kiosk, type=args.type, limit=args.limit)

    def human(p: dict) -> None:
        for e in p["items"]:
            extra = {k: v for k, v in e["body"].items() if k not in ("v", "id", "kiosk_id", "boot_id", "seq", "ts",
                                                                     "type")}
            print(f"{_when(e['received_at'])} {e['kiosk_id']:<20} #{e['seq']:<6} {e['type']:<20} "
                  f"{json.dumps(extra, ensure_ascii=False)}")
        print(f"{len(p['items'])} of {p['total']} events")
    return _out(args, page, human)


def cmd_telemetry(args: argparse.Namespace) -> int:
    rows = store_reads.telemetry_history(_ro(args), args.kiosk_id, since=time.time() - args.hours * 3600)

    def human(rs: list) -> None:
        print(f"{'TIME':<20} {'CPU%':>6} {'MEM%':>6} {'DISK%':>6} {'TEMP':>6} {'QUEUE':>6}")
        def num(v) -> str:
            return "-" if v is None else f"{v:.1f}"

        for r in rs:
            print(f"{_when(r['ts']):<20} {num(r['cpu']):>6} {num(r['memory']):>6} {num(r['disk']):>6} "
                  f"{num(r['temperature']):>6} {num(r['queue_depth']):>6}")
    return _out(args, rows, human)


def cmd_config(args: argparse.Namespace) -> int:
    if args.sub == "set":
        text = args.body
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read {text[1:]}: {exc.strerror}", field="body") from None
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not JSON: {exc}", field="body") from None
        return _action(args, "config_set", {"scope": args.scope, "body": body},
                       lambda r: print(f"{args.scope} set: version {r['version']}"))
    conn = _ro(args)
    if args.sub == "get":
        layers = store_reads.layers(conn)
        data = layers if not args.scope else layers.get(args.scope, {"version": 0, "body": {}})
        return _out(args, data, lambda d: print(json.dumps(d, ensure_ascii=False, indent=2)))
    diffs = store_reads.config_diff(conn, args.kiosk_id, only_out_of_sync=args.out_of_sync)

    def human(ds: list) -> None:
        for d in ds:
            state = "in sync" if d["in_sync"] else f"OUT OF SYNC ({d['reported_status'] or 'no report'}) {d['reason']}"
            print(f"{d['kiosk_id']:<24} desired v{d['desired_version']} reported v{d['reported_version']} {state}")
            for x in d["differences"]:
                print(f"    {x['key']}: desired {x['desired']!r} reported {x['reported']!r}")
    return _out(args, diffs, human)


def cmd_command(args: argparse.Namespace) -> int:
    conn = _ro(args)
    if args.sub == "show":
        rec = store_reads.command(conn, args.command_id)
        if rec is None:
            raise KioskError(f"no command {args.command_id!r}")
        return _out(args, rec, _print_command)
    if args.sub == "list":
        page = store_reads.commands(conn, kiosk_id=args.kiosk, status=args.status, limit=args.limit)
        return _out(args, page, lambda p: [_print_command(c) for c in p["items"]])
    try:
        cargs = json.loads(args.args)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON: {exc}", field="--args") from None
    command_id = uuid.uuid4().hex
    # Checked here too, so a typo fails at once instead of after a round trip.
    cmds.new_command(args.kiosk_id, args.name, cargs, _user(args), time.time(), ttl=args.ttl, command_id=command_id)
    _action(args, "command", {"id": command_id, "kiosk_id": args.kiosk_id, "name": args.name, "args": cargs,
                              "ttl": args.ttl, "timeout": args.timeout}, lambda r: None, quiet=True)
    if not args.wait:
        return _out(args, store_reads.command(conn, command_id), lambda c: print(f"command {command_id} queued"))
    # Final within ttl (expired) or within the timeout after sending (timed_out); a little slack.
    deadline = time.monotonic() + args.ttl + args.timeout + 10
    while True:
        rec = store_reads.command(conn, command_id)
        if rec and rec["status"] in cmds.FINAL:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    _out(args, rec, _print_command)
    return 0 if rec and rec["status"] == "succeeded" else 1


def _print_command(c: dict) -> None:
    print(f"{c['id']} {c['kiosk_id']} {c['name']} {json.dumps(c['args'], ensure_ascii=False)} by {c['issuer']}: "
          f"{c['status'].upper()}")
    if c.get("error"):
        print(f"  error: {c['error']}")
    if c.get("result") is not None:
        print(f"  result: {json.dumps(c['result'], ensure_ascii=False)}")


def cmd_group(args: argparse.Namespace) -> int:
    return _action(args, "group", {"group": args.group, "kiosks": args.kiosks, "add": args.action == "add"},
                   lambda r: print(f"group {args.group}: {args.action} {' '.join(args.kiosks)}"))


def cmd_audit(args: argparse.Namespace) -> int:
    page = store_reads.audit_log(_ro(args), user=args.by_user, action=args.action, limit=args.limit)

    def human(p: dict) -> None:
        for a in p["items"]:
            print(f"{_when(a['ts'])} {a['user']:<12} {a['action']:<14} {a['target']:<24} {a['result']}")
    return _out(args, page, human)


def cmd_public_key(args: argparse.Namespace) -> int:
    path = Path(args.data_dir) / signing.KEY_FILE
    if not path.exists():
        raise StoreError(f"no signing key at {path}: start kiosk-controller once (it creates one)")
    key = signing.load_or_create_key(args.data_dir)
    return _out(args, {"controller_public_key": signing.public_key_text(key)},
                lambda d: print(d["controller_public_key"]))


def _user(args: argparse.Namespace) -> str:
    return getattr(args, "user", None) or os.environ.get("KIOSKCTL_USER") or getpass.getuser()


def _action(args: argparse.Namespace, kind: str, payload: dict, human, *, quiet: bool = False,
            timeout: float = 10.0) -> int:
    """Queue an action for the controller and wait until it has been carried out."""
    _ro(args).close()  # fails with a clear message when there is no controller database
    conn = fleet_db(args).connect()
    action_id = enqueue_action(conn, _user(args), kind, payload, time.time())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        act = store_reads.action(conn, action_id)
        if act and act["status"] != "pending":
            break
        time.sleep(0.05)
    else:
        cur = conn.execute("UPDATE actions SET status='cancelled', done_at=? WHERE id=? AND status='pending'",
                           (time.time(), action_id))
        if cur.rowcount == 1:
            raise StoreError(f"the controller did not take the action within {timeout:.0f} s "
                             "(is kiosk-controller running on this data folder?); cancelled")
        act = store_reads.action(conn, action_id)
    if act is None:
        raise StoreError(f"action {action_id} is gone from the controller's database")
    if act["status"] == "error":
        if args.json:  # scripts parse stdout: the refusal is JSON too
            print(json.dumps({"error": act["result"]["error"]}, ensure_ascii=False))
        print(f"error: {act['result']['error']}", file=sys.stderr)
        return 1
    if not quiet:
        _out(args, act["result"], human)
    return 0


def main(argv: list[str] | None = None, *, clock: Callable[[], float] = time.time) -> int:
    args = build_parser().parse_args(argv)
    args.clock = clock  # the queue commands' "today" (a parameter so tests do not depend on the hour)
    args.data_dir_given = getattr(args, "data_dir", None)
    args.data_dir = args.data_dir_given or Path("controller-data")
    args.json = getattr(args, "json", False)
    handlers = {"status": cmd_status, "kiosks": cmd_kiosks, "alarms": cmd_alarms, "events": cmd_events,
                "telemetry": cmd_telemetry, "config": cmd_config, "command": cmd_command, "group": cmd_group,
                "audit": cmd_audit, "public-key": cmd_public_key}
    try:
        if getattr(args, "config", None) is not None:
            args.data_dir = fleet_db(args).data_dir  # the config's data folder unless --data-dir overrides it
        code = (getattr(args, "handler", None) or handlers[args.command])(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return code
    except BrokenPipeError:
        # `kioskctl events | head`: the reader has all it wanted. Point stdout at /dev/null so the
        # interpreter's final flush does not fail again (Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KioskError as exc:  # StoreError and ConfigError included
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sql_dialect.all_errors() as exc:
        print(f"error: the controller database {_where(args)} cannot be read ({str(exc).strip()[:300]}); "
              "is --data-dir (or --database) the controller's, and has the controller run there?", file=sys.stderr)
        return 2


def _where(args: argparse.Namespace) -> str:
    try:
        return fleet_db(args).describe()
    except KioskError:
        return f"in {args.data_dir}"


if __name__ == "__main__":
    sys.exit(main())
