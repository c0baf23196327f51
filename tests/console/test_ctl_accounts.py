"""``kioskctl user ...`` / ``kioskctl api-token ...`` handlers: first admin, password file, tokens."""

from __future__ import annotations

import argparse
import json

import pytest

from controller import ctl_accounts
from controller.web.accounts import Accounts


def run(argv, capsys):
    p = argparse.ArgumentParser(prog="kioskctl")
    ctl_accounts.register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    code = ctl_accounts.run(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_first_admin_from_a_password_file_then_login(tmp_path, capsys):
    pw = tmp_path / "pw"
    pw.write_text("a-long-admin-password\n", encoding="utf-8")
    code, out, _ = run(["user", "add", "ada", "--role", "admin", "--password-file", str(pw),
                        "--data-dir", str(tmp_path)], capsys)
    assert code == 0 and "ada (admin) created" in out
    acc = Accounts(tmp_path)
    assert acc.login("ada", "a-long-admin-password")[1].role == "admin"
    acc.close()
    code, _, err = run(["user", "add", "ada", "--role", "viewer", "--password-file", str(pw),
                        "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "exists" in err


def test_refuses_short_password_missing_file_and_no_terminal(tmp_path, capsys, monkeypatch):
    short = tmp_path / "short"
    short.write_text("short\n")
    code, _, err = run(["user", "add", "bob", "--role", "viewer", "--password-file", str(short),
                        "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "at least" in err
    code, _, err = run(["user", "add", "bob", "--role", "viewer", "--password-file", str(tmp_path / "nope"),
                        "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "password-file" in err
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = run(["user", "add", "bob", "--role", "viewer", "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "--password-file" in err


def test_tokens_create_list_revoke(tmp_path, capsys):
    code, out, err = run(["api-token", "create", "district-dashboard", "--data-dir", str(tmp_path)], capsys)
    token = out.strip()
    assert code == 0 and token.startswith("kt_") and "shown once" in err
    code, out, _ = run(["api-token", "list", "--json", "--data-dir", str(tmp_path)], capsys)
    (listed,) = json.loads(out)
    assert listed["name"] == "district-dashboard" and listed["role"] == "viewer" and token not in out
    code, out, _ = run(["api-token", "revoke", listed["token_id"], "--data-dir", str(tmp_path)], capsys)
    assert code == 0
    code, _, err = run(["api-token", "revoke", "nope", "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "no token" in err


def test_role_change_and_unlock(tmp_path, capsys):
    acc = Accounts(tmp_path)
    acc.add_user("vera", "viewer", "a-long-viewer-pass")
    acc.close()
    assert run(["user", "role", "vera", "operator", "--data-dir", str(tmp_path)], capsys)[0] == 0
    assert run(["user", "unlock", "vera", "--data-dir", str(tmp_path)], capsys)[0] == 0
    code, out, _ = run(["user", "list", "--data-dir", str(tmp_path)], capsys)
    assert "vera" in out and "operator" in out
    with pytest.raises(SystemExit):
        run(["user", "role", "vera", "root", "--data-dir", str(tmp_path)], capsys)


def test_kioskctl_carries_the_account_commands(tmp_path):
    import subprocess
    import sys

    pw = tmp_path / "pw"
    pw.write_text("a-long-admin-password\n", encoding="utf-8")
    base = [sys.executable, "-m", "controller.ctl"]
    r = subprocess.run([*base, "--data-dir", str(tmp_path), "user", "add", "ada", "--role", "admin",
                        "--password-file", str(pw)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*base, "user", "add", "ada", "--role", "admin", "--password-file", str(pw),
                        "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "exists" in r.stderr
