"""``kiosk-release publish`` uploads a signed bundle to the controller's console server in pieces
(resuming after a dropped link), and the controller checks it before it serves it to kiosks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import urllib.request

import pytest

from contract import release as R
from controller import rollout_job
from controller.web import rollout_api
from controller.web.accounts import Accounts
from controller.web.serve import start_console
from foundation.errors import ProvisioningError
from provisioning import release_cli
from provisioning.release_publish import Client, publish


@pytest.fixture
def server(make_controller, tmp_path):
    ctl = make_controller()
    job = rollout_job.for_controller(ctl, base_url="")
    console, url = start_console(ctl, dataclasses.replace(ctl.config, http="127.0.0.1:0"),
                                 extra_routes=tuple(rollout_api.routes(job)))
    accounts = Accounts(ctl.config.data_dir)
    yield job, url, accounts.create_token("rel", "admin"), accounts.create_token("op", "operator")
    console.stop()


def test_publish_in_pieces_resumes_and_is_served(server, releases, tmp_path, capsys):
    job, url, admin, _ = server
    bundle = releases.base / "bundle-2.0.0"
    man = R.parse_manifest((bundle / R.MANIFEST_FILE).read_bytes())
    big = max(man.files, key=lambda e: e.size)
    client = Client(url, admin)
    # A link that dropped after the first piece of the largest file.
    first = R.object_path(bundle, big.sha256).read_bytes()[:4096]
    client.call("PUT", f"/api/v1/releases/uploads/{big.sha256}?offset=0", first, "application/octet-stream")
    status, got = client.call("PUT", f"/api/v1/releases/uploads/{big.sha256}?offset=0", first,
                              "application/octet-stream", ok=(200, 409))
    assert status == 409 and got["size"] == 4096  # a repeated piece is refused, nothing is appended twice
    token_file = tmp_path / "admin.token"
    token_file.write_text(admin)
    code = release_cli.main(["publish", str(bundle), "--controller", url, "--token-file", str(token_file),
                             "--chunk", "65536"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["version"] == "2.0.0"
    assert out["uploaded_bytes"] == sum(e.size for e in {e.sha256: e for e in man.files}.values()) - 4096
    raw = (bundle / R.MANIFEST_FILE).read_bytes()
    assert job.store.release("2.0.0")["manifest_sha256"] == hashlib.sha256(raw).hexdigest()
    with urllib.request.urlopen(f"{url.rstrip('/')}/releases/kiosk/2.0.0/manifest.json", timeout=10) as resp:
        assert resp.read() == raw


def test_bad_uploads_are_refused_with_the_reason(server, releases, tmp_path):
    job, url, admin, operator = server
    bundle = tmp_path / "b"
    shutil.copytree(releases.base / "bundle-2.0.0", bundle)
    with pytest.raises(ProvisioningError, match="403"):
        publish(bundle, Client(url, operator))
    man = R.parse_manifest((bundle / R.MANIFEST_FILE).read_bytes())
    victim = R.object_path(bundle, man.files[0].sha256)
    victim.write_bytes(b"x" + victim.read_bytes()[1:])  # a flipped byte, same size
    with pytest.raises(ProvisioningError, match="422.*hash_mismatch"):
        publish(bundle, Client(url, admin))
    assert job.store.release("2.0.0") is None
    shutil.copyfile(R.object_path(releases.base / "bundle-2.0.0", man.files[0].sha256), victim)
    assert publish(bundle, Client(url, admin))["version"] == "2.0.0"  # the corrupted upload was dropped
    shutil.copytree(releases.base / "bundle-3.0.0", tmp_path / "b3")
    bundle = tmp_path / "b3"
    doc = json.loads((bundle / R.MANIFEST_FILE).read_text())
    doc.pop("signature")
    (bundle / R.MANIFEST_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProvisioningError, match="not signed"):
        publish(bundle, Client(url, admin))
