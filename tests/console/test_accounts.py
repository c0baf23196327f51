"""Accounts: scrypt hashes, lock-out after failed logins, sessions, API tokens, audit (their own SQLite
file, or tables in the fleet's PostgreSQL database; the same tests on both)."""

from __future__ import annotations

import pytest

from controller.fleet_db import FleetDb
from controller.web.accounts import (
    LOCK_SECONDS,
    MAX_FAILED,
    AccountError,
    Accounts,
    AuthFailed,
    hash_password,
    verify_password,
)
from tests.conftest import BACKENDS


class Clock:
    def __init__(self, t=1_700_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture(params=BACKENDS)
def acc(tmp_path, request):
    clock = Clock()
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else ""
    a = Accounts(tmp_path, clock=clock, fleet_db=FleetDb(tmp_path, url))
    a.clock_obj = clock
    yield a
    a.close()


def test_sessions_on_postgresql_are_served_by_any_instance(postgres_url, tmp_path):
    """Two consoles (two controller instances) on one PostgreSQL database: a session opened on one
    is valid on the other, and signing out on the other ends it for both."""
    one = Accounts(tmp_path / "a", fleet_db=FleetDb(tmp_path / "a", postgres_url))
    two = Accounts(tmp_path / "b", fleet_db=FleetDb(tmp_path / "b", postgres_url))
    try:
        one.add_user("ada", "admin", "ada-admin-password")
        token, who = one.login("ada", "ada-admin-password", source="127.0.0.1")
        assert two.session(token) == who
        two.logout(token)
        assert one.session(token) is None
        assert [a["action"] for a in two.audit_trail(target="ada")["items"]] == ["login", "user.add"]
    finally:
        one.close()
        two.close()


def test_password_hash_is_scrypt_salted_and_verifies():
    h1, h2 = hash_password("secret-password"), hash_password("secret-password")
    assert h1.startswith("scrypt$") and h1 != h2
    assert verify_password("secret-password", h1)
    assert not verify_password("secret-passwore", h1)
    assert not verify_password("x", "garbage")


def test_no_default_account_and_password_rules(acc):
    assert acc.users() == []
    with pytest.raises(AuthFailed):
        acc.login("admin", "admin")
    with pytest.raises(AccountError, match="at least"):
        acc.add_user("ada", "admin", "short")
    with pytest.raises(AccountError, match="role"):
        acc.add_user("ada", "root", "long-enough-password")
    with pytest.raises(AccountError, match="user name"):
        acc.add_user("a b", "admin", "long-enough-password")
    acc.add_user("ada", "admin", "long-enough-password")
    with pytest.raises(AccountError, match="exists"):
        acc.add_user("ada", "viewer", "long-enough-password")
    stored = acc.conn.execute("SELECT password FROM users").fetchone()[0]
    assert "long-enough-password" not in stored


def test_login_session_logout(acc):
    acc.add_user("ada", "operator", "long-enough-password")
    token, who = acc.login("ada", "long-enough-password")
    assert who.role == "operator" and who.csrf
    assert acc.session(token).name == "ada"
    assert acc.session("forged") is None
    acc.clock_obj.t += 13 * 3600
    assert acc.session(token) is None, "sessions expire"
    token, _ = acc.login("ada", "long-enough-password")
    acc.logout(token)
    assert acc.session(token) is None


def test_lockout_after_repeated_failures_then_unlock(acc):
    acc.add_user("ada", "admin", "long-enough-password")
    for _ in range(MAX_FAILED - 1):
        with pytest.raises(AuthFailed, match="wrong"):
            acc.login("ada", "wrong-password-x")
    with pytest.raises(AuthFailed, match="locked"):
        acc.login("ada", "wrong-password-x")
    with pytest.raises(AuthFailed, match="locked"):
        acc.login("ada", "long-enough-password")  # even the right password while locked
    acc.clock_obj.t += LOCK_SECONDS + 1
    acc.login("ada", "long-enough-password")
    actions = [a["action"] for a in acc.audit_trail(target="ada")["items"]]
    assert actions.count("login.failed") == MAX_FAILED and "login" in actions


def test_admin_unlock_and_password_change_ends_sessions(acc):
    acc.add_user("ada", "admin", "long-enough-password")
    token, _ = acc.login("ada", "long-enough-password")
    for _ in range(MAX_FAILED):
        with pytest.raises(AuthFailed):
            acc.login("ada", "nope-nope-nope")
    acc.unlock("ada")
    acc.login("ada", "long-enough-password")
    acc.set_password("ada", "another-long-password")
    assert acc.session(token) is None


def test_api_tokens_roles_and_revocation(acc):
    token = acc.create_token("district-dashboard", "viewer")
    assert token.startswith("kt_")
    who = acc.token(token)
    assert who.role == "viewer" and who.via == "token" and not who.can("operator")
    token_id = token.split("_")[1]
    stored = acc.conn.execute("SELECT secret_hash FROM api_tokens").fetchone()[0]
    assert token.split("_", 2)[2] not in stored
    with pytest.raises(AuthFailed):
        acc.token(token[:-1] + ("A" if token[-1] != "A" else "B"))
    with pytest.raises(AuthFailed, match="kt_"):
        acc.token("not-a-token")
    acc.revoke_token(token_id)
    with pytest.raises(AuthFailed, match="revoked"):
        acc.token(token)
    assert [a["action"] for a in acc.audit_trail()["items"]][:2] == ["token.revoke", "token.create"]
