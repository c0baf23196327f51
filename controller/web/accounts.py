"""Console accounts: users with roles, scrypt password hashes, sessions, lock-out, API tokens.

Kept in its own SQLite file (``console.sqlite3`` in the controller's data folder) with its own
numbered migrations; with the fleet store on PostgreSQL, in tables of that database
(``controller.pg_parts``), so sessions do not depend on which controller instance opened them. What account holders do (sign-ins, account and token changes, the console's
own actions) goes to the fleet's one audit log (``controller.audit_log``, in the controller store),
so ``kioskctl audit`` and the console show every row.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller import audit_log
from controller.fleet_db import FleetDb
from foundation.errors import KioskError

log = logging.getLogger(__name__)

DB_NAME = "console.sqlite3"
ROLES = ("viewer", "operator", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}

# scrypt cost: n=2**14, r=8 takes ~50 ms and 16 MiB, the common interactive-login setting.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 10
MAX_FAILED = 5  # failed logins in a row before the account locks
LOCK_SECONDS = 15 * 60
SESSION_SECONDS = 12 * 3600
LOGIN_FAILED = (f"wrong user name or password, or the account is locked after {MAX_FAILED} failed sign-ins "
                f"({LOCK_SECONDS // 60} minutes, or until an admin unlocks it)")

MIGRATIONS: list[str] = [
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password TEXT NOT NULL,
        failed INTEGER NOT NULL DEFAULT 0,
        locked_until REAL NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL
    );
    CREATE TABLE api_tokens (
        token_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created REAL NOT NULL,
        last_used REAL NOT NULL DEFAULT 0,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_target ON audit(target, ts);
    CREATE INDEX audit_ts ON audit(ts);
    """,
]


class AccountError(KioskError):
    """A user, password, role or token request is not acceptable; the message says why."""


class AuthFailed(AccountError):
    """Wrong name or password, locked account, or a bad or revoked token."""


@dataclass(frozen=True)
class Principal:
    """Who is making a request: a user through a session or an integrator through a token."""

    name: str
    role: str
    via: str  # "session" or "token"
    csrf: str = ""

    def can(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


@functools.cache
def _dummy_hash() -> str:
    return hash_password("no such user", salt=b"0" * 16)


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 * 1024 * 1024, dklen=len(digest) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise AccountError(f"user name must be 1-64 letters, digits, '-', '_' or '.', got {name!r}")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


class Accounts:
    """All account state, behind one lock (the console's threads share one connection)."""

    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time,
                 token_bytes: Callable[[int], str] = secrets.token_urlsafe, fleet_db: FleetDb | None = None) -> None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self._token = token_bytes
        self.lock = threading.Lock()
        db = fleet_db or FleetDb.of(data_dir)
        # The one audit log lives in the controller store (created here if the console runs first),
        # wherever the controller's config puts it (``fleet_db``; default: the SQLite file here).
        self.fleet = db.open_migrated()
        if db.on_postgresql:
            # Accounts and sessions in the fleet database: every controller instance signs in the
            # same operators and serves any operator's session.
            self.conn = db.open_part("console_accounts")
            return
        self.conn = sqlite3.connect(Path(data_dir) / DB_NAME, timeout=10, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        moved = audit_log.adopt_console_rows(self.fleet, self.conn)
        if moved:
            log.info("console audit rows moved to the fleet audit log", extra={"fields": {"rows": moved}})

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise AccountError(f"console database schema {version} is newer than this controller")
        for i in range(version, len(MIGRATIONS)):
            with self.conn:
                self.conn.executescript(MIGRATIONS[i])
                self.conn.execute(f"PRAGMA user_version = {i + 1}")

    def close(self) -> None:
        self.conn.close()
        self.fleet.close()

    # -- users ---------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str, *, actor: str = "kioskctl") -> None:
        check_name(name)
        check_role(role)
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
        hashed = hash_password(password)
        with self.lock, self.conn:
            if self.conn.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise AccountError(f"user {name!r} exists already")
            self.conn.execute("INSERT INTO users(name, role, password, created) VALUES (?,?,?,?)",
                              (name, role, hashed, self.clock()))
        self.audit(actor, "user.add", name, {"role": role})

    def set_password(self, name: str, password: str, *, actor: str = "kioskctl") -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
        hashed = hash_password(password)
        with self.lock, self.conn:
            cur = self.conn.execute("UPDATE users SET password=?, failed=0, locked_until=0 WHERE name=?",
                                    (hashed, name))
            if cur.rowcount == 0:
                raise AccountError(f"no user {name!r}")
            self.conn.execute('DELETE FROM sessions WHERE "user"=?', (name,))
        self.audit(actor, "user.password", name, {})

    def set_role(self, name: str, role: str, *, actor: str = "kioskctl") -> None:
        check_role(role)
        with self.lock, self.conn:
            if self.conn.execute("UPDATE users SET role=? WHERE name=?", (role, name)).rowcount == 0:
                raise AccountError(f"no user {name!r}")
        self.audit(actor, "user.role", name, {"role": role})

    def unlock(self, name: str, *, actor: str = "kioskctl") -> None:
        with self.lock, self.conn:
            if self.conn.execute("UPDATE users SET failed=0, locked_until=0 WHERE name=?", (name,)).rowcount == 0:
                raise AccountError(f"no user {name!r}")
        self.audit(actor, "user.unlock", name, {})

    def users(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.conn.execute("SELECT name, role, failed, locked_until, created, disabled FROM users "
                                     "ORDER BY name").fetchall()
        return [dict(r) for r in rows]

    # -- sessions ------------------------------------------------------------------------------
    def login(self, name: str, password: str, *, source: str = "") -> tuple[str, Principal]:
        """Check the password and open a session; returns (cookie token, principal)."""
        now = self.clock()
        with self.lock:
            row = self.conn.execute("SELECT * FROM users WHERE name=?", (name,)).fetchone()
        # One scrypt per attempt whatever the case, and one message: neither the time taken nor
        # the words tell whether a user name exists or is locked.
        matches = verify_password(password, row["password"] if row is not None else _dummy_hash())
        if row is None or row["disabled"]:
            self.audit(name[:64] or "-", "login.failed", name[:64], {"why": "unknown user", "source": source})
            raise AuthFailed(LOGIN_FAILED)
        if row["locked_until"] > now:
            self.audit(name, "login.locked", name, {"source": source})
            raise AuthFailed(LOGIN_FAILED)
        if not matches:
            failed = row["failed"] + 1
            locked = now + LOCK_SECONDS if failed >= MAX_FAILED else 0
            with self.lock, self.conn:
                self.conn.execute("UPDATE users SET failed=?, locked_until=? WHERE name=?",
                                  (0 if locked else failed, locked, name))
            self.audit(name, "login.failed", name, {"failed": failed, "locked": bool(locked), "source": source})
            if locked:
                log.warning("account locked", extra={"fields": {"user": name}})
            raise AuthFailed(LOGIN_FAILED)
        token = self._token(32)
        csrf = self._token(24)
        with self.lock, self.conn:
            self.conn.execute("UPDATE users SET failed=0, locked_until=0 WHERE name=?", (name,))
            self.conn.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            self.conn.execute("INSERT INTO sessions VALUES (?,?,?,?,?)",
                              (_sha256(token), name, csrf, now, now + SESSION_SECONDS))
        self.audit(name, "login", name, {"source": source})
        return token, Principal(name, row["role"], "session", csrf)

    def session(self, token: str) -> Principal | None:
        if not token:
            return None
        with self.lock:
            row = self.conn.execute(
                'SELECT s."user", s.csrf, s.expires, u.role, u.disabled FROM sessions s JOIN users u '
                'ON u.name = s."user" WHERE s.token_hash=?', (_sha256(token),)).fetchone()
        if row is None or row["expires"] < self.clock() or row["disabled"]:
            return None
        return Principal(row["user"], row["role"], "session", row["csrf"])

    def logout(self, token: str) -> None:
        with self.lock, self.conn:
            self.conn.execute("DELETE FROM sessions WHERE token_hash=?", (_sha256(token),))

    # -- API tokens ----------------------------------------------------------------------------
    def create_token(self, name: str, role: str, *, actor: str = "kioskctl") -> str:
        """Return ``kt_<id>_<secret>``; only its hash is stored, so it is shown once."""
        if not name or len(name) > 100:
            raise AccountError("token name must be 1-100 characters")
        check_role(role)
        token_id = self._token(6).replace("_", "x").replace("-", "y")
        secret = self._token(32)
        with self.lock, self.conn:
            self.conn.execute("INSERT INTO api_tokens(token_id, name, role, secret_hash, created_by, created) "
                              "VALUES (?,?,?,?,?,?)", (token_id, name, role, _sha256(secret), actor, self.clock()))
        self.audit(actor, "token.create", token_id, {"name": name, "role": role})
        return f"kt_{token_id}_{secret}"

    def revoke_token(self, token_id: str, *, actor: str = "kioskctl") -> None:
        with self.lock, self.conn:
            if self.conn.execute("UPDATE api_tokens SET revoked=1 WHERE token_id=?", (token_id,)).rowcount == 0:
                raise AccountError(f"no token {token_id!r}")
        self.audit(actor, "token.revoke", token_id, {})

    def tokens(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.conn.execute("SELECT token_id, name, role, created_by, created, last_used, revoked "
                                     "FROM api_tokens ORDER BY created").fetchall()
        return [dict(r) for r in rows]

    def token(self, bearer: str) -> Principal:
        parts = bearer.split("_", 2) if bearer.startswith("kt_") else []
        if len(parts) != 3:
            raise AuthFailed("API token must look like kt_<id>_<secret>")
        _, token_id, secret = parts
        with self.lock:
            row = self.conn.execute("SELECT * FROM api_tokens WHERE token_id=?", (token_id,)).fetchone()
        if row is None or row["revoked"] or not hmac.compare_digest(row["secret_hash"], _sha256(secret)):
            raise AuthFailed("unknown or revoked API token")
        now = self.clock()
        if now - row["last_used"] > 60:  # avoid a write per request
            with self.lock, self.conn:
                self.conn.execute("UPDATE api_tokens SET last_used=? WHERE token_id=?", (now, token_id))
        return Principal(f"token:{row['name']}", row["role"], "token")

    # -- audit ---------------------------------------------------------------------------------
    def audit(self, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None,
              result: str = "ok") -> None:
        with self.lock:
            audit_log.write(self.fleet, user=actor, action=action, target=target, detail=detail, result=result,
                            now=self.clock())

    def audit_trail(self, *, target: str | None = None, user: str | None = None, action: str | None = None,
                    offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """The fleet's one audit log, newest first: ``total`` and ``items``."""
        with self.lock:
            return audit_log.read(self.fleet, target=target, user=user, action=action, offset=offset, limit=limit)
