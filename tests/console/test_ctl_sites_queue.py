"""``kioskctl sites list|set`` and ``kioskctl queue next|show`` on a real controller store.

The queue is called through the same function as the console's *Call next*, so the CLI and the
console share one queue; every call (not a repeat) lands in the console's audit trail. The queue
commands run on both backends of the fleet database (``--database`` naming PostgreSQL).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import closing

import pytest

from controller import ctl, store_reads
from controller.fleet_db import FleetDb
from controller.service_backend import handle_request
from controller.service_backend.tables import open_tables
from controller.store import connect
from controller.web.accounts import Accounts
from tests.conftest import BACKENDS
from tests.console.conftest import seed
from tests.support.clocks import midday_clock

# Tickets belong to the local day they were taken on: the CLI and the tickets share a clock at
# midday, so "ten minutes ago" is today at any hour the suite runs.
CLOCK = midday_clock()


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "controller-data"
    seed(d, n=7)  # gd-0000..gd-0006 at site-0 (0, 3, 6), site-1 (1, 4), site-2 (2, 5); 0 and 5 offline
    return d


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The queue tests (``queue_db``, ``console_env``) run on SQLite and on PostgreSQL."""
    return request.param


@pytest.fixture
def queue_db(tmp_path, fleet_database):
    """The seeded fleet of ``data`` in the fleet database of ``backend``."""
    d = tmp_path / "controller-data"
    seed(d, n=7, database=fleet_database)
    return FleetDb(d, fleet_database)


def _where(data) -> list[str]:
    db = FleetDb.of(data)
    return ["--data-dir", str(db.data_dir), *(["--database", db.url] if db.url else [])]


def _accounts(data) -> Accounts:
    db = FleetDb.of(data)
    return Accounts(db.data_dir, fleet_db=db)


def run(data, capsys, *argv):
    code = ctl.main([*_where(data), "--user", "wanda", *argv], clock=CLOCK)
    out = capsys.readouterr()
    return code, out.out, out.err


def take_tickets(data, kiosk="gd-0001", counter="general", n=3, ago=600, clock=CLOCK):
    conn = open_tables(FleetDb.of(data))
    now = clock()
    body = {"service": "queue_ticket", "op": "take", "args": {"counter": counter}}
    numbers = [handle_request(conn, kiosk, body, now - ago + i)["data"]["number"] for i in range(n)]
    conn.close()
    return numbers


def test_sites_list_counts_kiosks_and_online(data, capsys):
    code, out, err = run(data, capsys, "sites", "list", "--json")
    assert code == 0, err
    items = {s["site"]: s for s in json.loads(out)["items"]}
    assert {s: (x["kiosks"], x["online"], x["name"]) for s, x in items.items()} == {
        "site-0": (3, 2, ""), "site-1": (2, 2, ""), "site-2": (2, 1, "")}
    code, out, _ = run(data, capsys, "sites", "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["SITE", "NAME", "REGION", "KIOSKS", "ONLINE"]
    assert out.splitlines()[1].split() == ["site-0", "-", "-", "3", "2"]
    assert "3 sites, 7 kiosks" in out


def test_sites_set_names_a_site_keeps_what_is_not_given_and_is_audited(data, capsys):
    code, out, err = run(data, capsys, "sites", "set", "site-1", "--name", "新河社区服务中心", "--region", "Tianhe")
    assert code == 0, err
    assert "site-1" in out and "新河社区服务中心" in out and "Tianhe" in out
    code, out, _ = run(data, capsys, "sites", "set", "site-1", "--region", "Haizhu", "--json")
    assert code == 0 and json.loads(out) == {"site": "site-1", "name": "新河社区服务中心", "region": "Haizhu"}
    # A site may be named before any kiosk is installed there.
    assert run(data, capsys, "sites", "set", "site-9", "--name", "Future centre")[0] == 0
    code, out, _ = run(data, capsys, "--json", "sites", "list")
    items = {s["site"]: s for s in json.loads(out)["items"]}
    assert (items["site-1"]["name"], items["site-1"]["region"], items["site-1"]["kiosks"]) == \
        ("新河社区服务中心", "Haizhu", 2)
    assert (items["site-9"]["name"], items["site-9"]["kiosks"], items["site-9"]["online"]) == ("Future centre", 0, 0)
    with closing(connect(data, readonly=True)) as conn:
        log = store_reads.audit_log(conn, action="site.set")["items"]
    assert [(a["user"], a["target"], a["result"], a["detail"]) for a in log] == [
        ("wanda", "site:site-9", "ok", {"name": "Future centre", "region": ""}),
        ("wanda", "site:site-1", "ok", {"name": "新河社区服务中心", "region": "Haizhu"}),
        ("wanda", "site:site-1", "ok", {"name": "新河社区服务中心", "region": "Tianhe"}),
    ]
    code, out, _ = run(data, capsys, "audit", "--action", "site.set")
    assert code == 0 and out.count("site.set") == 3


@pytest.mark.parametrize("argv, words", [
    (["sites", "set", "", "--name", "x"], ["site", "empty"]),
    (["sites", "set", "   ", "--name", "x"], ["site", "empty"]),
    (["sites", "set", "s" * 65, "--name", "x"], ["site", "at most 64", "65"]),
    (["sites", "set", " site-1", "--name", "x"], ["site", "space"]),
    (["sites", "set", "a/b", "--name", "x"], ["site", "'/'"]),
    (["sites", "set", "site-1"], ["--name", "--region"]),
    (["sites", "set", "site-1", "--name", "n" * 129], ["--name", "at most 128"]),
    (["sites", "set", "site-1", "--region", "bad\nregion"], ["--region", "control"]),
    (["queue", "next", ""], ["site", "empty"]),
    (["queue", "show", "s" * 65], ["site", "at most 64"]),
    (["queue", "next", "site-1", "--request-id", ""], ["--request-id", "1-"]),
    (["queue", "next", "site-1", "--request-id", "r" * 100], ["--request-id", "got 100"]),
])
def test_bad_input_is_named_and_exits_2_without_writing(data, capsys, argv, words):
    code, out, err = run(data, capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert all(w in err for w in words), err
    with closing(connect(data, readonly=True)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sites").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0


def test_no_database_is_a_setup_error_and_creates_nothing(tmp_path, capsys):
    for argv in (["sites", "list"], ["sites", "set", "s", "--name", "n"], ["queue", "next", "s"],
                 ["queue", "show", "s"]):
        code, _, err = run(tmp_path / "nowhere", capsys, *argv)
        assert code == 2 and "no controller database" in err
    assert not (tmp_path / "nowhere").exists()


def test_queue_next_calls_in_order_through_the_console_path_and_is_audited(queue_db, capsys):
    data = queue_db
    numbers = take_tickets(data)  # gd-0001 is at site-1
    code, out, err = run(data, capsys, "queue", "next", "site-1", "--json", "--request-id", "win3-1")
    assert code == 0, err
    first = json.loads(out)
    assert (first["number"], first["counter"], first["site"], first["called_by"], first["repeated"]) == \
        (numbers[0], "general", "site-1", "wanda", False)
    assert first["wait_minutes"] >= 9.9
    # A retried script with the same request id gets the same ticket; nobody else is called.
    code, out, _ = run(data, capsys, "queue", "next", "site-1", "--request-id", "win3-1")
    assert code == 0 and numbers[0] in out and "already called" in out
    code, out, _ = run(data, capsys, "queue", "next", "site-1", "--counter", "general")
    assert code == 0 and out.startswith(f"called {numbers[1]} (general) at site-1")

    acc = _accounts(data)
    trail = [a for a in acc.audit_trail(target="site:site-1")["items"] if a["action"] == "queue.call_next"]
    acc.close()
    assert [(a["user"], a["detail"]["number"], a["detail"]["via"]) for a in reversed(trail)] == \
        [("wanda", numbers[0], "kioskctl"), ("wanda", numbers[1], "kioskctl")]

    code, out, _ = run(data, capsys, "queue", "show", "site-1", "--json")
    q = json.loads(out)
    assert {c["counter"]: (c["waiting"], c["next"]) for c in q["counters"]}["general"] == (1, numbers[2])
    assert [t["number"] for t in q["called"]] == [numbers[1], numbers[0]]
    code, out, _ = run(data, capsys, "queue", "show", "site-1")
    assert code == 0 and f"general          1  {numbers[2]}" in out and f"called {numbers[0]}" in out


def test_queue_next_refusals_map_to_exit_codes(queue_db, capsys):
    data = queue_db
    take_tickets(data, n=1)
    code, out, err = run(data, capsys, "queue", "next", "site-1", "--counter", "social")
    assert (code, out) == (1, "") and err == "error: no ticket is waiting at site 'site-1' at counter social today\n"
    code, _, err = run(data, capsys, "queue", "next", "nowhere")
    assert code == 2 and err == "error: no kiosk is registered at site 'nowhere'\n"
    code, _, err = run(data, capsys, "queue", "show", "nowhere")
    assert code == 2 and "no kiosk is registered at site 'nowhere'" in err
    with pytest.raises(SystemExit) as exc:
        ctl.main([*_where(data), "queue", "next", "site-1", "--counter", "bank"])
    assert exc.value.code == 2 and "--counter" in capsys.readouterr().err
    assert run(data, capsys, "queue", "next", "site-1")[0] == 0
    code, _, err = run(data, capsys, "queue", "next", "site-1")  # the one ticket is gone
    assert code == 1 and "no ticket is waiting" in err
    acc = _accounts(data)
    assert [a["action"] for a in acc.audit_trail(target="site:site-1")["items"]].count("queue.call_next") == 1
    acc.close()


def test_cli_and_console_share_one_queue(console_env, clients, capsys):
    console_env.clock = CLOCK
    numbers = take_tickets(console_env.db, n=3)
    code, out, _ = run(console_env.db, capsys, "queue", "next", "site-1", "--json")
    assert code == 0 and json.loads(out)["number"] == numbers[0]
    r = clients["otto"].post("/api/v1/sites/site-1/queue/next", json={"request_id": "same-id"})
    assert r.status_code == 200 and r.json()["number"] == numbers[1]
    # The console's request ids and the CLI's live apart: the same id from the CLI is a new call.
    code, out, _ = run(console_env.db, capsys, "queue", "next", "site-1", "--request-id", "same-id", "--json")
    assert code == 0 and json.loads(out)["number"] == numbers[2] and not json.loads(out)["repeated"]
    trail = console_env.accounts.audit_trail(target="site:site-1")["items"]
    assert sorted(a["user"] for a in trail if a["action"] == "queue.call_next") == ["otto", "wanda", "wanda"]


def test_installed_command_exit_codes(data):
    # The installed command reads the wall clock: the ticket is taken now, inside today.
    take_tickets(data, n=1, ago=0, clock=time.time)
    base = [sys.executable, "-m", "controller.ctl", "--data-dir", str(data)]
    ok = subprocess.run([*base, "queue", "next", "site-1"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("called A")
    empty = subprocess.run([*base, "queue", "next", "site-1"], capture_output=True, text=True, timeout=60)
    assert empty.returncode == 1 and empty.stderr.startswith("error: no ticket is waiting")
    bad = subprocess.run([*base, "sites", "set", "x" * 65, "--name", "n"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "at most 64" in bad.stderr
