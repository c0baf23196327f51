"""``kioskctl user ...`` and ``kioskctl api-token ...``: console accounts and integrator tokens.

Hooked into kioskctl by ``register(subparsers)``; each parsed namespace carries ``handler``.
The first admin is created here, on the command line: the console has no default password.
Passwords are typed twice at a prompt (never echoed) or read from ``--password-file``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from contextlib import closing
from pathlib import Path

from controller.web.accounts import MIN_PASSWORD, ROLES, AccountError, Accounts


def _data_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                   help="the controller's data folder (default ./controller-data)")


def register(subparsers) -> None:
    user = subparsers.add_parser("user", help="console accounts (viewer, operator, admin)")
    usub = user.add_subparsers(dest="user_command", required=True)
    add = usub.add_parser("add", help="create a console account")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-file", type=Path, help="read the password from the first line of this file")
    add.set_defaults(handler=cmd_user_add)
    pw = usub.add_parser("passwd", help="set a new password (signs the user out everywhere)")
    pw.add_argument("name")
    pw.add_argument("--password-file", type=Path)
    pw.set_defaults(handler=cmd_user_passwd)
    role = usub.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(handler=cmd_user_role)
    unlock = usub.add_parser("unlock", help="clear failed logins of a locked account")
    unlock.add_argument("name")
    unlock.set_defaults(handler=cmd_user_unlock)
    ls = usub.add_parser("list", help="list accounts")
    ls.set_defaults(handler=cmd_user_list)

    tok = subparsers.add_parser("api-token", help="REST API tokens for integrators")
    tsub = tok.add_subparsers(dest="api_token_command", required=True)
    create = tsub.add_parser("create", help="create a token (printed once)")
    create.add_argument("name", help="who or what uses it, e.g. district-dashboard")
    create.add_argument("--role", choices=ROLES, default="viewer")
    create.set_defaults(handler=cmd_token_create)
    tls = tsub.add_parser("list", help="list tokens (never their secrets)")
    tls.set_defaults(handler=cmd_token_list)
    rev = tsub.add_parser("revoke", help="revoke a token by its id")
    rev.add_argument("token_id")
    rev.set_defaults(handler=cmd_token_revoke)
    for p in (add, pw, role, unlock, ls, create, tls, rev):
        _data_dir_arg(p)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output")


def _accounts(args: argparse.Namespace) -> Accounts:
    """The console's accounts where the controller keeps them (``--database``/``--config``: PostgreSQL)."""
    from controller.ctl import fleet_db

    data_dir = getattr(args, "data_dir", Path("controller-data"))
    return Accounts(data_dir, fleet_db=fleet_db(argparse.Namespace(**{**vars(args), "data_dir": data_dir})))


def _password(args: argparse.Namespace, *, prompt=getpass.getpass) -> str:
    if args.password_file is not None:
        try:
            lines = args.password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise AccountError(f"cannot read --password-file: {exc.strerror}") from None
        if not lines or not lines[0]:
            raise AccountError("--password-file is empty")
        return lines[0]
    if not sys.stdin.isatty():
        raise AccountError("no terminal to prompt for the password; use --password-file")
    first = prompt(f"password for {args.name} (at least {MIN_PASSWORD} characters): ")
    if prompt("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def _done(args: argparse.Namespace, text: str, data: dict) -> int:
    print(json.dumps(data, ensure_ascii=False) if getattr(args, "json", False) else text)
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    password = _password(args)
    with closing(_accounts(args)) as acc:
        acc.add_user(args.name, args.role, password, actor="kioskctl")
    return _done(args, f"user {args.name} ({args.role}) created", {"name": args.name, "role": args.role})


def cmd_user_passwd(args: argparse.Namespace) -> int:
    password = _password(args)
    with closing(_accounts(args)) as acc:
        acc.set_password(args.name, password)
    return _done(args, f"password of {args.name} changed", {"name": args.name})


def cmd_user_role(args: argparse.Namespace) -> int:
    with closing(_accounts(args)) as acc:
        acc.set_role(args.name, args.role)
    return _done(args, f"{args.name} is now {args.role}", {"name": args.name, "role": args.role})


def cmd_user_unlock(args: argparse.Namespace) -> int:
    with closing(_accounts(args)) as acc:
        acc.unlock(args.name)
    return _done(args, f"{args.name} unlocked", {"name": args.name})


def cmd_user_list(args: argparse.Namespace) -> int:
    with closing(_accounts(args)) as acc:
        users = acc.users()
    if getattr(args, "json", False):
        print(json.dumps(users))
        return 0
    if not users:
        print("no console accounts yet; create the first admin with: kioskctl user add NAME --role admin")
        return 0
    now = time.time()
    for u in users:
        locked = " LOCKED" if u["locked_until"] > now else ""
        print(f"{u['name']:<24} {u['role']:<9}{locked}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    with closing(_accounts(args)) as acc:
        token = acc.create_token(args.name, args.role)
    if getattr(args, "json", False):
        print(json.dumps({"name": args.name, "role": args.role, "token": token}))
    else:
        print(token)
        print(f"# API token {args.name!r} ({args.role}); shown once, store it now. "
              "Send it as 'Authorization: Bearer <token>'.", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with closing(_accounts(args)) as acc:
        tokens = acc.tokens()
    if getattr(args, "json", False):
        print(json.dumps(tokens))
        return 0
    for t in tokens:
        print(f"{t['token_id']:<10} {t['name']:<28} {t['role']:<9} {'revoked' if t['revoked'] else 'active'}")
    if not tokens:
        print("no API tokens")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with closing(_accounts(args)) as acc:
        acc.revoke_token(args.token_id)
    return _done(args, f"token {args.token_id} revoked", {"token_id": args.token_id})


def run(args: argparse.Namespace) -> int:
    """Run a handler, turning account errors into a message and exit status 2."""
    try:
        return args.handler(args)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
