"""Browser forms send the CSRF token in the form body only (no header): the pages that render
again after a POST must accept that, as a real browser's submission."""

from __future__ import annotations

import pytest

from tests.console.conftest import login


@pytest.fixture
def admin_form_client(app):
    client = login(app, "ada")
    csrf = client.headers.pop("x-csrf-token")  # a plain HTML form sends no header
    yield client, csrf
    client.__exit__(None, None, None)


def test_accounts_form_without_header(admin_form_client):
    client, csrf = admin_form_client
    r = client.post("/accounts", data={"csrf": csrf, "action": "create_token", "name": "bi-tool", "role": "viewer"})
    assert r.status_code == 200, r.text[:300]
    assert "kt_" in r.text
    r = client.post("/accounts", data={"action": "create_token", "name": "x", "role": "viewer"})
    assert r.status_code == 403  # without the form's token it is still refused


def test_services_form_without_header(admin_form_client):
    client, csrf = admin_form_client
    r = client.post("/services", data={"csrf": csrf, "action": "nonsense"})
    assert r.status_code == 422, r.text[:300]
