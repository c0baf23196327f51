"""One audit log: the console's rows (sign-ins, accounts, tokens) and the controller's are one
table that ``kioskctl audit``, the console and the API all show; old stores' console rows move in.
"""

from __future__ import annotations

import json
import sqlite3

from controller import audit_log, ctl
from controller.store import DB_NAME, Store
from controller.web.accounts import DB_NAME as CONSOLE_DB
from controller.web.accounts import MIGRATIONS, Accounts


def kioskctl_audit(data, capsys, *extra):
    assert ctl.main(["--data-dir", str(data), "--json", "audit", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_kioskctl_audit_shows_sign_ins_and_account_changes(console_env, clients, capsys):
    clients["ada"].post("/accounts", data={"csrf": clients["ada"].headers["x-csrf-token"], "action": "create_token",
                                           "name": "bi-export", "role": "viewer"})
    got = kioskctl_audit(console_env.data_dir, capsys, "--limit", "100")
    actions = [(a["user"], a["action"]) for a in got["items"]]
    assert ("ada", "login") in actions and ("otto", "login") in actions and ("ada", "token.create") in actions
    assert ("kioskctl", "user.add") in actions  # the conftest's accounts were made as kioskctl does
    # The console and the API read the very same rows.
    api = clients["vera"].get("/api/v1/audit", params={"limit": 100}).json()
    assert api["items"] == got["items"] and api["total"] == got["total"]


def test_old_console_rows_move_into_the_one_log_once(tmp_path, capsys):
    data = tmp_path / "controller-data"
    store = Store(data)
    audit_log.write(store.conn, user="otto", action="alarm.ack", target="alarm:3", detail={}, result="ok", now=200.0)
    store.close()
    # A console database from before: its own audit table with two rows.
    old = sqlite3.connect(data / CONSOLE_DB)
    old.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")  # the console's first schema, audit table in it
    old.executescript("""
        INSERT INTO audit (ts, actor, action, target, detail) VALUES (100, 'ada', 'login', 'ada', '{"source": "web"}');
        INSERT INTO audit (ts, actor, action, target, detail) VALUES (300, 'x', 'login.failed', 'x', '{}');""")
    old.commit()
    old.close()
    Accounts(data).close()
    Accounts(data).close()  # a second start moves nothing twice
    got = kioskctl_audit(data, capsys)
    assert [(a["ts"], a["user"], a["action"], a["result"]) for a in got["items"]] == [
        (300.0, "x", "login.failed", "failed"), (200.0, "otto", "alarm.ack", "ok"), (100.0, "ada", "login", "ok")]
    assert got["items"][2]["detail"] == {"source": "web"}
    conn = sqlite3.connect(data / CONSOLE_DB)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='audit'").fetchone() is None
    conn.close()
    assert (data / DB_NAME).exists()
