"""Enrolment cannot clone a kiosk, and a kiosk trusts only the pinned fleet CA's controller
(issue 14, item 4): the real enrolment endpoint, the real client, the real TLS broker."""

from __future__ import annotations

import pytest

from controller import enrolment_service
from foundation.errors import EnrolmentRefused, ProvisioningError
from foundation.settings import KioskConfig, load_toml
from provisioning import enrol_client, fleet_ca, pki, revocation
from tests.provisioning.conftest import PASSPHRASE, token
from tests.support.waiting import wait_until


def _pin(ctx) -> str:
    return pki.fingerprint(ctx.ca.cert)


def _enrol(server, ctx, path, kiosk_id="th-001", site="tianhe-001", *, bound: bool = False):
    t = token(ctx, site, kiosk_id=kiosk_id) if bound else token(ctx, site)
    return enrol_client.enroll(server.url, token=t, kiosk_id=kiosk_id, site=site,
                               config_path=path, ca_hash=_pin(ctx), clock=ctx.clock)


def test_a_site_token_cannot_clone_a_kiosk_in_service(enrol_server, enrol_ctx, tmp_path):
    _enrol(enrol_server, enrol_ctx, tmp_path / "a.toml")
    with pytest.raises(EnrolmentRefused) as exc:
        _enrol(enrol_server, enrol_ctx, tmp_path / "clone.toml")
    assert exc.value.reason == "kiosk_active" and not (tmp_path / "clone.toml").exists()
    assert len(enrol_ctx.index.active("th-001", enrol_ctx.clock())) == 1


def test_a_token_for_this_kiosk_id_replaces_it_and_retires_the_old_certificate(enrol_server, enrol_ctx, tmp_path):
    first = _enrol(enrol_server, enrol_ctx, tmp_path / "a.toml")
    second = _enrol(enrol_server, enrol_ctx, tmp_path / "b.toml", bound=True)
    active = enrol_ctx.index.active("th-001", enrol_ctx.clock())
    assert [c["serial"] for c in active] == [second.serial] and first.serial != second.serial


def test_a_revoked_kiosks_site_no_longer_blocks_enrolment_elsewhere(enrol_server, enrol_ctx, fleet_dir, tmp_path):
    _enrol(enrol_server, enrol_ctx, tmp_path / "a.toml")
    revocation.revoke(fleet_dir, PASSPHRASE, "th-001", reason="moved")
    moved = _enrol(enrol_server, enrol_ctx, tmp_path / "b.toml", site="yuexiu-002")
    assert moved.site == "yuexiu-002"


def test_plain_http_without_a_pinned_ca_is_refused_before_sending_the_token(enrol_server, enrol_ctx, tmp_path):
    t = token(enrol_ctx)
    with pytest.raises(ProvisioningError, match="--ca-hash"):
        enrol_client.enroll(enrol_server.url, token=t, kiosk_id="th-001", site="tianhe-001",
                            config_path=tmp_path / "k.toml")
    assert enrol_ctx.conn.execute("SELECT used_at FROM enrol_tokens").fetchone()[0] is None


@pytest.mark.parametrize("field", ["broker", "controller_public_key", "resident_ref_key", "site"])
def test_an_answer_altered_in_between_is_refused(enrol_ctx, field):
    key = pki.new_ec_key()
    csr = pki.build_csr(key, "th-001").public_bytes(pki.serialization.Encoding.PEM).decode()
    reply = enrolment_service.enroll(enrol_ctx, {"token": token(enrol_ctx), "kiosk_id": "th-001",
                                                 "site": "tianhe-001", "csr": csr})
    enrol_client._check_reply(reply, key, "th-001", _pin(enrol_ctx))  # the untouched answer passes
    forged = {**reply, field: "mqtts://attacker.example:8883" if field == "broker" else "x" * 44}
    with pytest.raises(ProvisioningError, match="not signed by the pinned CA"):
        enrol_client._check_reply(forged, key, "th-001", _pin(enrol_ctx))


def test_renewal_retires_the_old_certificate_at_the_broker(enrol_server, enrol_ctx, fleet_dir, tls_broker,
                                                            kiosk_client, tmp_path):
    cfg_path = tmp_path / "k.toml"
    _enrol(enrol_server, enrol_ctx, cfg_path)
    old = load_toml(KioskConfig, cfg_path)
    probe = kiosk_client((old.cert_file, old.key_file), "th-001")
    probe.close()
    enrol_client.renew(cfg_path, clock=enrol_ctx.clock)
    new = load_toml(KioskConfig, cfg_path)
    index = fleet_ca.CertIndex(fleet_dir.index)
    try:
        assert [c["revoke_reason"] for c in index.certs("th-001")] == ["superseded", ""]
    finally:
        index.close()
    revocation.reload_broker(pid=tls_broker.proc.pid)  # the CRL the renewal rewrote
    assert wait_until(lambda: not kiosk_client((old.cert_file, old.key_file), "th-001", connect=False)
                      .connect(timeout=2), timeout=10)
    kiosk_client((new.cert_file, new.key_file), "th-001")


def test_a_kiosk_gets_only_its_sites_resident_reference_key(enrol_server, enrol_ctx, fleet_dir, tmp_path):
    from foundation.secure_files import resident_key_file

    keys = {}
    for kiosk_id, site in (("th-001", "tianhe-001"), ("th-002", "tianhe-001"), ("yx-001", "yuexiu-002")):
        _enrol(enrol_server, enrol_ctx, tmp_path / kiosk_id / "k.toml", kiosk_id, site)
        keys[kiosk_id] = resident_key_file(load_toml(KioskConfig, tmp_path / kiosk_id / "k.toml").resident_ref_key_file)
    fleet_key = resident_key_file(fleet_dir.resident_key)
    assert keys["th-001"] == keys["th-002"] != keys["yx-001"]
    assert fleet_key not in keys.values()
