"""Enrolment over real HTTP: the happy path, and every refusal issues nothing. The tests that use
the endpoint run with its tokens in SQLite and in PostgreSQL."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from controller import sql_dialect
from controller.enrolment_server import open_context
from controller.fleet_db import FleetDb
from controller.kiosk_sites import SiteRegistry
from foundation.errors import EnrolmentRefused, ProvisioningError
from foundation.secure_files import resident_key_file, site_resident_key
from foundation.settings import KioskConfig, load_toml
from provisioning import enrol_client, pki
from tests.conftest import BACKENDS
from tests.provisioning.conftest import PASSPHRASE, token


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Every test here that uses the endpoint's context runs on both fleet database backends."""
    return request.param


def _issued(ctx) -> int:
    return len(ctx.index.certs())


def test_enrol_writes_identity_and_config(enrol_server, enrol_ctx, fleet_dir, tmp_path):
    t = token(enrol_ctx)
    ca_hash = pki.fingerprint(enrol_ctx.ca.cert)
    cfg_path = tmp_path / "kiosk" / "kiosk.toml"
    res = enrol_client.enroll(enrol_server.url, token=t, kiosk_id="th-001", site="tianhe-001", config_path=cfg_path,
                        ca_hash=ca_hash, clock=enrol_ctx.clock)
    cfg = load_toml(KioskConfig, cfg_path)
    assert (cfg.kiosk_id, cfg.site, str(cfg.broker)) == ("th-001", "tianhe-001", "mqtts://127.0.0.1:8883")
    assert cfg.controller_public_key == enrol_ctx.controller_public_key and len(cfg.controller_public_key) == 44
    assert cfg.enrolment_url == enrol_server.url
    assert stat.S_IMODE(cfg_path.parent.joinpath(cfg.key_file).stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(open(cfg.cert_file, "rb").read())
    assert pki.common_name(cert.subject) == "th-001" and format(cert.serial_number, "x") == res.serial
    key = serialization.load_pem_private_key(open(cfg.key_file, "rb").read(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert [c["kiosk_id"] for c in enrol_ctx.index.certs("th-001")] == ["th-001"]
    assert res.warnings == []
    # The site's resident-reference key (derived from the fleet's), private on the kiosk, the same
    # for every kiosk of the site (issue 14: never the fleet-wide key).
    assert stat.S_IMODE(os.stat(cfg.resident_ref_key_file).st_mode) == 0o600
    assert resident_key_file(cfg.resident_ref_key_file) == \
        site_resident_key(resident_key_file(fleet_dir.resident_key), "tianhe-001")
    other = tmp_path / "other" / "kiosk.toml"
    enrol_client.enroll(enrol_server.url, ca_hash=_pin(enrol_ctx), token=token(enrol_ctx), kiosk_id="th-002", site="tianhe-001", config_path=other,
                  clock=enrol_ctx.clock)
    assert resident_key_file(load_toml(KioskConfig, other).resident_ref_key_file) == \
        resident_key_file(cfg.resident_ref_key_file)
    # ...and never in the controller's database.
    key_hex = fleet_dir.resident_key.read_text().strip()
    for table in sql_dialect.tables(enrol_ctx.conn):
        assert key_hex not in repr(enrol_ctx.conn.execute(f"SELECT * FROM {table}").fetchall())


def test_a_fleet_made_before_resident_keys_gets_one(fleet_dir, clock):
    fleet_dir.resident_key.unlink()
    ctx = open_context(fleet_dir.root, PASSPHRASE, broker_url="mqtts://127.0.0.1:8883", clock=clock)
    try:
        assert stat.S_IMODE(fleet_dir.resident_key.stat().st_mode) == 0o600
        assert bytes.fromhex(ctx.resident_ref_key) == resident_key_file(fleet_dir.resident_key)
    finally:
        ctx.index.close()
        ctx.conn.close()
    fleet_dir.resident_key.write_text("not hex\n")
    with pytest.raises(ProvisioningError, match="64 lowercase hex digits"):
        open_context(fleet_dir.root, PASSPHRASE, clock=clock)


def test_token_is_single_use(enrol_server, enrol_ctx, tmp_path):
    t = token(enrol_ctx)
    enrol_client.enroll(enrol_server.url, ca_hash=_pin(enrol_ctx), token=t, kiosk_id="th-001", site="tianhe-001", config_path=tmp_path / "a.toml")
    before = _issued(enrol_ctx)
    with pytest.raises(EnrolmentRefused) as exc:
        enrol_client.enroll(enrol_server.url, ca_hash=_pin(enrol_ctx), token=t, kiosk_id="th-002", site="tianhe-001", config_path=tmp_path / "b.toml")
    assert exc.value.reason == "token_used" and "issue a new one" in str(exc.value)
    assert _issued(enrol_ctx) == before and not (tmp_path / "b.toml").exists()


def test_the_controller_files_a_kiosk_at_its_tokens_site(enrol_server, enrol_ctx, tmp_path, fleet_database):
    """Without the fleet folder the controller takes a kiosk's site from the token it enrolled with,
    read from the fleet database (PostgreSQL too); a database without tokens yet answers "no
    record" without failing the controller's open transaction."""
    store = FleetDb(tmp_path / "ctl", fleet_database).open_migrated()
    sites = SiteRegistry(None)
    try:
        with store:  # one transaction, as the controller's worker holds one
            assert sites.site_for(store, "th-001", "tianhe-009", "", enrol_ctx.clock()) == ("tianhe-009", False)
            store.execute("SELECT COUNT(*) FROM kiosks").fetchone()  # the transaction is still usable
        enrol_client.enroll(enrol_server.url, ca_hash=_pin(enrol_ctx), token=token(enrol_ctx), kiosk_id="th-001",
                            site="tianhe-001", config_path=tmp_path / "a.toml")
        if fleet_database:  # the endpoint wrote its token to the same PostgreSQL database
            assert sites.site_for(store, "th-001", "tianhe-009", "", enrol_ctx.clock()) == ("tianhe-001", True)
        else:  # SQLite: the endpoint's database is the fleet folder's controller store
            assert sites.site_for(enrol_ctx.conn, "th-001", "tianhe-009", "", enrol_ctx.clock()) == ("tianhe-001", True)
    finally:
        store.close()


def test_certificate_copies_only_add_certificates_and_revocations(fleet_dir, tmp_path, fleet_database):
    """An instance with the fleet folder copies its certificate index into the fleet database
    (issued offline: only the index knows); a revocation reaches it too, and a copy made from an
    older folder (the certificate not yet revoked there) cannot undo it."""
    from controller import enrolment_service, kiosk_sites
    from provisioning import fleet_ca

    db = FleetDb(tmp_path / "ctl", fleet_database).open_migrated()
    index = fleet_ca.CertIndex(fleet_dir.index)
    sites = SiteRegistry(fleet_dir.root)
    try:
        enrolment_service.ensure_schema(db)
        fleet_ca.issue_identity(fleet_ca.load_ca(fleet_dir, PASSPHRASE), index, "th-077", "tianhe-007", pki.utcnow())
        version, rows = sites.pending()
        kiosk_sites.copy_certs(db, rows)
        sites.copied(version, rows)
        now = pki.utcnow()
        assert SiteRegistry(None).enrolled_site(db, "th-077", now.timestamp()) == "tianhe-007"
        assert sites.pending() is None  # unchanged index: nothing to copy
        stale = index.certs("th-077")
        index.revoke("th-077", now, reason="stolen")
        version, rows = sites.pending()
        assert [r["serial"] for r in rows] == [r["serial"] for r in stale]  # only what changed
        kiosk_sites.copy_certs(db, rows)
        kiosk_sites.copy_certs(db, stale)  # an older copy of the folder, where it is not revoked
        assert SiteRegistry(None).enrolled_site(db, "th-077", now.timestamp()) is None
    finally:
        sites.close()
        index.close()
        db.close()


@pytest.mark.parametrize("case", ["expired", "other_site", "other_kiosk", "unknown"])
def test_bad_tokens_are_refused(case, enrol_server, enrol_ctx, tmp_path):
    kw = {"kiosk_id": "th-009"} if case == "other_kiosk" else {}
    t = token(enrol_ctx, **kw) if case != "unknown" else "ket1.not-a-real-token"
    site = "yuexiu-002" if case == "other_site" else "tianhe-001"
    if case == "expired":
        enrol_ctx.clock.t += 3601
    before = _issued(enrol_ctx)
    with pytest.raises(EnrolmentRefused) as exc:
        enrol_client.enroll(enrol_server.url, ca_hash=_pin(enrol_ctx), token=t, kiosk_id="th-001", site=site, config_path=tmp_path / "k.toml")
    expected = {"expired": "token_expired", "other_site": "token_site", "other_kiosk": "token_kiosk",
                "unknown": "token_unknown"}[case]
    assert exc.value.reason == expected
    assert _issued(enrol_ctx) == before and not (tmp_path / "k.toml").exists()
    if case != "unknown":  # a refusal does not burn a good token for its rightful use
        row = enrol_ctx.conn.execute("SELECT used_at FROM enrol_tokens").fetchone()
        assert row[0] is None


def _pin(ctx) -> str:
    return pki.fingerprint(ctx.ca.cert)


def _post(url, body):
    return enrol_client._post(url + "/api/v1/enroll", body, ca_file=None, timeout=5)


def test_csr_whose_key_does_not_match_is_refused(enrol_server, enrol_ctx):
    signer, other = pki.new_ec_key(), pki.new_ec_key()
    der = pki.build_csr(signer, "th-001").public_bytes(serialization.Encoding.DER)
    spki = lambda k: k.public_key().public_bytes(serialization.Encoding.DER,  # noqa: E731
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = x509.load_der_x509_csr(der.replace(spki(signer), spki(other)))
    pem = forged.public_bytes(serialization.Encoding.PEM).decode()
    before = _issued(enrol_ctx)
    with pytest.raises(EnrolmentRefused) as exc:
        _post(enrol_server.url, {"token": token(enrol_ctx), "kiosk_id": "th-001", "site": "tianhe-001", "csr": pem})
    assert exc.value.reason == "csr_signature"
    assert _issued(enrol_ctx) == before


@pytest.mark.parametrize("csr, reason", [
    ("garbage", "csr_invalid"),
    ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "csr_invalid"),
    ("other-cn", "csr_subject"),
])
def test_garbage_or_wrong_csr_is_refused(csr, reason, enrol_server, enrol_ctx):
    if csr == "other-cn":
        csr = pki.build_csr(pki.new_ec_key(), "th-999").public_bytes(serialization.Encoding.PEM).decode()
    t = token(enrol_ctx)
    with pytest.raises(EnrolmentRefused) as exc:
        _post(enrol_server.url, {"token": t, "kiosk_id": "th-001", "site": "tianhe-001", "csr": csr})
    assert exc.value.reason == reason
    assert _issued(enrol_ctx) == 1  # only the controller's own certificate from init-fleet


@pytest.mark.parametrize("body, reason", [
    ({"token": "x", "site": "s", "csr": "c"}, "bad_request"),
    ({"token": "x", "site": "s", "csr": "c", "kiosk_id": "_controller"}, "kiosk_id_invalid"),
    ({"token": "x", "site": "s", "csr": "c", "kiosk_id": "a/b"}, "kiosk_id_invalid"),
])
def test_malformed_requests_name_the_problem(body, reason, enrol_server):
    with pytest.raises(EnrolmentRefused) as exc:
        _post(enrol_server.url, body)
    assert exc.value.reason == reason


def test_unreachable_controller_says_what_to_check(tmp_path):
    from tests.support.broker import free_port

    with pytest.raises(ProvisioningError, match="network cable"):
        enrol_client.enroll(f"http://127.0.0.1:{free_port()}", token="t", kiosk_id="k1", site="s",
                      config_path=tmp_path / "k.toml", timeout=2, ca_hash="sha256:" + "0" * 64)


def test_pinned_ca_mismatch_is_refused(enrol_server, enrol_ctx, tmp_path):
    with pytest.raises(ProvisioningError, match="pinned"):
        enrol_client.enroll(enrol_server.url, token=token(enrol_ctx), kiosk_id="th-001", site="tianhe-001",
                      config_path=tmp_path / "k.toml", ca_hash="sha256:" + "0" * 64)
    assert not (tmp_path / "k.toml").exists()


def test_wrong_kiosk_clock_is_reported(enrol_server, enrol_ctx, tmp_path):
    res = enrol_client.enroll(enrol_server.url, ca_hash=_pin(enrol_ctx), token=token(enrol_ctx), kiosk_id="th-001", site="tianhe-001",
                        config_path=tmp_path / "k.toml", clock=lambda: enrol_ctx.clock.t - 86400)
    assert res.warnings and "clock" in res.warnings[0]


def test_renew_gives_a_new_certificate_and_switches_config(enrol_server, enrol_ctx, tmp_path):
    cfg_path = tmp_path / "k.toml"
    first = enrol_client.enroll(enrol_server.url, ca_hash=_pin(enrol_ctx), token=token(enrol_ctx), kiosk_id="th-001", site="tianhe-001",
                          config_path=cfg_path, clock=enrol_ctx.clock)
    old = load_toml(KioskConfig, cfg_path)
    second = enrol_client.renew(cfg_path, clock=enrol_ctx.clock)
    new = load_toml(KioskConfig, cfg_path)
    assert second.serial != first.serial and new.cert_file != old.cert_file and new.key_file != old.key_file
    assert new.site == "tianhe-001" and new.controller_public_key == old.controller_public_key
    # The renewal retires the old certificate (issue 14); Mosquitto checks the CRL only at the
    # TLS handshake, so the running connection is not cut by that.
    assert [c["revoke_reason"] if c["revoked_at"] else None for c in enrol_ctx.index.certs("th-001")] \
        == ["superseded", None]


def test_renew_with_revoked_certificate_is_refused(enrol_server, enrol_ctx, tmp_path):
    cfg_path = tmp_path / "k.toml"
    enrol_client.enroll(enrol_server.url, ca_hash=_pin(enrol_ctx), token=token(enrol_ctx), kiosk_id="th-001", site="tianhe-001",
                  config_path=cfg_path, clock=enrol_ctx.clock)
    enrol_ctx.index.revoke("th-001", pki.utcnow())
    with pytest.raises(EnrolmentRefused) as exc:
        enrol_client.renew(cfg_path, clock=enrol_ctx.clock)
    assert exc.value.reason == "cert_revoked"


def test_site_conflict_for_an_enrolled_kiosk(enrol_server, enrol_ctx, tmp_path):
    enrol_client.enroll(enrol_server.url, ca_hash=_pin(enrol_ctx), token=token(enrol_ctx), kiosk_id="th-001", site="tianhe-001",
                  config_path=tmp_path / "a.toml")
    with pytest.raises(EnrolmentRefused) as exc:
        enrol_client.enroll(enrol_server.url, ca_hash=_pin(enrol_ctx), token=token(enrol_ctx, "yuexiu-002"), kiosk_id="th-001", site="yuexiu-002",
                      config_path=tmp_path / "b.toml")
    assert exc.value.reason == "kiosk_site_conflict"
