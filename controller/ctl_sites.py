"""``kioskctl sites ...`` and ``kioskctl queue ...``: community sites, and the queue at a site's window.

Hooked into kioskctl by ``register(subparsers, common)``; each parsed namespace carries ``handler``.

``sites set`` writes the ``sites`` table and the fleet audit log (``kioskctl audit``) in one write
transaction, exactly as the controller's own ``set_site`` does. It does not go through the
controller's action queue: the controller keeps no copy of site names in memory and has no action
for them, so there is nothing for it to carry out, and a site can be named before it runs.

``queue next`` calls the next ticket through the function the console's *Call next* uses
(:func:`controller.service_backend.queue_calls.call_next`) and records the call in the console's audit trail
(``/audit``) as the console does; ``queue show`` prints :func:`~controller.service_backend.queue_calls.site_queue`.

Exit codes as everywhere in kioskctl: 0 done; 1 the action did not succeed (no ticket waits, or
the store stayed busy), so a script may try again later; 2 usage or setup error (a bad site id,
counter or request id, a site without kiosks, no controller database), which trying again won't fix.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import closing
from typing import Any

from controller import ctl, sql_dialect, store_reads
from controller.service_backend import queue_calls
from controller.service_backend.operations import COUNTER_PREFIX
from controller.service_backend.tables import open_tables
from controller.store import Store
from foundation.errors import ConfigError, KioskError

MAX_SITE = 64  # as config scopes (site:NAME) and the queue service accept
MAX_NAME = 128
MAX_REGION = 64


def register(subparsers, common: argparse.ArgumentParser) -> None:
    s = subparsers.add_parser("sites", help="community sites: list, name and region", parents=[common])
    ssub = s.add_subparsers(dest="sub", required=True)
    ssub.add_parser("list", parents=[common], help="every site with name, region, kiosks and how many are online"
                    ).set_defaults(handler=cmd_sites_list)
    ss = ssub.add_parser("set", parents=[common], help="set a site's name and/or region (audited)")
    ss.add_argument("site", help="the site id kiosks report, e.g. community-0042")
    ss.add_argument("--name", help="display name, e.g. 'Xinhe community centre' (unchanged if not given)")
    ss.add_argument("--region", help="district or region (unchanged if not given)")
    ss.set_defaults(handler=cmd_sites_set)

    q = subparsers.add_parser("queue", help="call the next queue ticket of a site, or show its queue",
                              parents=[common])
    qsub = q.add_subparsers(dest="sub", required=True)
    qn = qsub.add_parser("next", parents=[common], help="call the next waiting ticket of today (audited)")
    qn.add_argument("site")
    qn.add_argument("--counter", choices=tuple(COUNTER_PREFIX), help="only this counter (default: any)")
    qn.add_argument("--request-id", help="a retry with the same id returns the same ticket instead of calling "
                                         "another resident")
    qn.set_defaults(handler=cmd_queue_next)
    qs = qsub.add_parser("show", parents=[common], help="today's queue: waiting per counter, the last calls")
    qs.add_argument("site")
    qs.set_defaults(handler=cmd_queue_show)


def check_site(site: str) -> str:
    """The site id as given, or ConfigError naming what is wrong with it."""
    if not site.strip():
        raise ConfigError("a site id must not be empty", field="site")
    if len(site) > MAX_SITE:
        raise ConfigError(f"a site id has at most {MAX_SITE} characters, this one {len(site)}", field="site")
    if site != site.strip():
        raise ConfigError(f"site id {site!r} starts or ends with a space", field="site")
    if "/" in site or not site.isprintable():
        raise ConfigError(f"site id {site!r} must not contain '/' or control characters", field="site")
    return site


def _check_text(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise ConfigError(f"at most {limit} characters, got {len(value)}", field=field)
    if not value.isprintable():
        raise ConfigError(f"{value!r} contains control characters", field=field)
    return value


def cmd_sites_list(args: argparse.Namespace) -> int:
    with closing(ctl._ro(args)) as conn:
        page = store_reads.sites(conn)

    def human(p: dict) -> None:
        if not p["items"]:
            print("no sites yet: kiosks report theirs when they connect, or name one with kioskctl sites set")
            return
        print(f"{'SITE':<24} {'NAME':<28} {'REGION':<16} {'KIOSKS':>6} {'ONLINE':>6}")
        for s in p["items"]:
            print(f"{s['site'] or '-':<24} {s['name'] or '-':<28} {s['region'] or '-':<16} "
                  f"{s['kiosks']:>6} {s['online']:>6}")
        print(f"{len(p['items'])} sites, {sum(s['kiosks'] for s in p['items'])} kiosks")
    return ctl._out(args, page, human)


def cmd_sites_set(args: argparse.Namespace) -> int:
    site = check_site(args.site)
    if args.name is None and args.region is None:
        raise ConfigError("nothing to set: give --name and/or --region")
    name = None if args.name is None else _check_text(args.name, "--name", MAX_NAME)
    region = None if args.region is None else _check_text(args.region, "--region", MAX_REGION)
    ctl._ro(args).close()  # a clear message (and no new empty database) when --data-dir is wrong
    store = Store(args.data_dir, ctl.fleet_db(args).url or None)
    try:
        with store.tx() as st:
            old = st.conn.execute("SELECT name, region FROM sites WHERE site=?", (site,)).fetchone()
            name = name if name is not None else (old["name"] if old else "")
            region = region if region is not None else (old["region"] if old else "")
            st.set_site(site, name, region)
            st.audit(ctl._user(args), "site.set", f"site:{site}", {"name": name, "region": region}, "ok", args.clock())
    finally:
        store.close()
    return ctl._out(args, {"site": site, "name": name, "region": region},
                    lambda d: print(f"site {site}: name {name or '-'}, region {region or '-'}"))


def _queue_conn(args: argparse.Namespace) -> Any:
    """An autocommit connection to the fleet database (SQLite or PostgreSQL) with the service tables in place."""
    ctl._ro(args).close()  # fails with a clear message, and creates nothing, when there is no database
    return open_tables(ctl.fleet_db(args))


def cmd_queue_next(args: argparse.Namespace) -> int:
    from controller.web.accounts import Accounts
    from controller.web.queue_page import audit_call

    site = check_site(args.site)
    user = ctl._user(args)
    ref = None
    if args.request_id is not None:
        # Namespaced like the console's form:/api: refs, so a CLI id never returns a console call.
        prefix = f"cli:{user}:"
        room = queue_calls.MAX_REF - len(prefix)
        if not 0 < len(args.request_id) <= room:
            raise ConfigError(f"must be 1-{room} characters (for user {user!r}), got {len(args.request_id)}",
                              field="--request-id")
        ref = prefix + args.request_id
    with closing(_queue_conn(args)) as conn:
        try:
            ticket = queue_calls.call_next(conn, site, now=args.clock(), called_by=user, counter=args.counter,
                                         request_ref=ref)
        except queue_calls.QueueEmpty as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except sql_dialect.unavailable_errors() as exc:  # locked past the busy timeout, connection lost
            print(f"error: the controller database is busy ({exc}); nothing was called, try again", file=sys.stderr)
            return 1
        # UnknownSite and bad_request are KioskErrors: kioskctl prints them and exits 2.
    try:
        with closing(Accounts(args.data_dir, fleet_db=ctl.fleet_db(args))) as accounts:
            audit_call(accounts, user, site, ticket, via="kioskctl")
    except (KioskError, *sql_dialect.all_errors()) as exc:
        print(f"error: ticket {ticket['number']} was called but the audit trail could not be written: {exc}",
              file=sys.stderr)
        return 1

    def human(t: dict) -> None:
        again = " (already called with this request id; nobody else was called)" if t["repeated"] else ""
        print(f"called {t['number']} ({t['counter']}) at {site}: waited {t['wait_minutes']} min{again}")
    return ctl._out(args, ticket, human)


def cmd_queue_show(args: argparse.Namespace) -> int:
    site = check_site(args.site)
    with closing(_queue_conn(args)) as conn:
        # The console shows an empty queue for any name; here a typo should not look like a quiet day.
        if conn.execute("SELECT 1 FROM kiosks WHERE site=? LIMIT 1", (site,)).fetchone() is None:
            raise KioskError(f"no kiosk is registered at site {site!r}")
        q = queue_calls.site_queue(conn, site, now=args.clock())

    def human(d: dict) -> None:
        print(f"queue at {site} on {d['day']}")
        print(f"  {'COUNTER':<10} {'WAITING':>7}  NEXT")
        for c in d["counters"]:
            print(f"  {c['counter']:<10} {c['waiting']:>7}  {c['next'] or '-'}")
        if not d["called"]:
            print("  nobody called yet today")
        for t in d["called"]:
            print(f"  called {t['number']:<6} {t['counter']:<8} at {ctl._when(t['called_at'])} by {t['called_by']}, "
                  f"waited {t['wait_minutes']} min")
    return ctl._out(args, q, human)
