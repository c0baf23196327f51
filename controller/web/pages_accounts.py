"""Admin page for console accounts and integrators' API tokens.

Users and passwords are managed with ``kioskctl user ...`` on the controller machine (no password
travels through the browser); here an admin sees accounts, unlocks one, and creates or revokes
API tokens (a new token is shown once).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from controller.web.accounts import ROLES, AccountError
from controller.web.auth import require


def _render(request, name, ctx, status=200):
    from controller.web.app import render

    return render(request, name, ctx, status)


async def accounts_page(request: Request, *, new_token: dict | None = None, error: str = "",
                        status: int = 200, who=None) -> Response:
    # After a form POST the submit handler has already checked the caller (CSRF from the form).
    request.state.who = who or require(request, "admin")
    acc = request.app.state.console.accounts
    return _render(request, "accounts.html", {"users": acc.users(), "tokens": acc.tokens(), "roles": ROLES,
                                              "new_token": new_token, "error": error,
                                              "now": request.app.state.console.clock()}, status)


async def accounts_submit(request: Request) -> Response:
    form = await request.form()
    who = require(request, "admin", form_csrf=str(form.get("csrf", "")))
    acc = request.app.state.console.accounts
    action = str(form.get("action", ""))
    try:
        if action == "create_token":
            name, role = str(form.get("name", "")).strip(), str(form.get("role", ""))
            token = acc.create_token(name, role, actor=who.name)
            return await accounts_page(request, new_token={"name": name, "role": role, "token": token}, who=who)
        if action == "revoke_token":
            acc.revoke_token(str(form.get("token_id", "")), actor=who.name)
        elif action == "unlock":
            acc.unlock(str(form.get("name", "")), actor=who.name)
        else:
            raise AccountError(f"action must be create_token, revoke_token or unlock, got {action!r}")
    except AccountError as exc:
        return await accounts_page(request, error=str(exc), status=422, who=who)
    return await accounts_page(request, who=who)


def routes() -> list[Route]:
    return [Route("/accounts", accounts_page, methods=["GET"]),
            Route("/accounts", accounts_submit, methods=["POST"])]
