"""Downloads under hostile conditions: mutual-TLS HTTPS, a controller that goes away for good in
the middle of a download (then comes back), and a disk that fills up during the download."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from contract import release as R
from foundation.errors import TransportError
from kiosk_ui.updater.fetch import Fetcher, from_folder
from kiosk_ui.updater.install import Installer
from kiosk_ui.updater.state import Layout, UpdateError
from provisioning import pki
from tests.support.bundle_server import BundleServer


def _manifest(bundle) -> R.Manifest:
    return R.parse_manifest((bundle / R.MANIFEST_FILE).read_bytes())


@pytest.fixture
def tls(tmp_path):
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_cert = pki.create_ca(now)
    ca = pki.CA(ca_key, ca_cert)
    files = {}
    for name, issue in (("server", lambda k: ca.issue_server(k.public_key(), ["127.0.0.1"], now)),
                        ("kiosk", lambda k: ca.issue_client("GD-TEST-0001", k.public_key(), now))):
        key = pki.new_ec_key()
        (tmp_path / f"{name}.key").write_bytes(pki.key_pem(key))
        (tmp_path / f"{name}.crt").write_bytes(pki.cert_pem(issue(key)))
        files[name] = (str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key"))
    (tmp_path / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*files["server"])
    server.load_verify_locations(str(tmp_path / "ca.crt"))
    server.verify_mode = ssl.CERT_REQUIRED  # the kiosk proves its identity with its certificate
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    client.load_cert_chain(*files["kiosk"])
    anonymous = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    return server, client, anonymous


def test_download_over_mutual_tls_and_refused_without_a_client_certificate(releases, tmp_path, tls):
    server, client, anonymous = tls
    bundle = releases.base / "bundle-1.0.0"
    man = _manifest(bundle)
    with BundleServer(bundle, tls=server) as srv:
        assert srv.url.startswith("https://")
        f = Fetcher(srv.url, tmp_path / "objects", context=client, sleep=lambda s: None)
        assert R.parse_manifest(f.manifest()).version == "1.0.0"
        for entry in man.files:
            R.check_file(entry, f.ensure(entry))
        with pytest.raises(TransportError):
            Fetcher(srv.url, tmp_path / "o2", context=anonymous, sleep=lambda s: None).manifest()


def test_controller_gone_mid_download_keeps_the_part_and_resumes_later(releases, tmp_path):
    bundle = releases.base / "bundle-1.0.0"
    big = max(_manifest(bundle).files, key=lambda e: e.size)
    objects = tmp_path / "objects"
    waits = []
    with BundleServer(bundle) as srv:
        srv.cut_after = 4000
        url = srv.url
        f = Fetcher(url, objects, sleep=waits.append, attempts=1)
        with pytest.raises(TransportError):
            f.ensure(big)
    part = objects / f".{big.sha256}.part"
    assert part.stat().st_size == 4000 and not (objects / big.sha256).exists()
    with pytest.raises(TransportError, match="failed 3 times"):  # nobody listens any more
        Fetcher(url, objects, sleep=waits.append, attempts=3, timeout=2).ensure(big)
    assert len(waits) == 2 and all(w > 0 for w in waits)  # backoff between attempts
    with BundleServer(bundle) as srv:
        f = Fetcher(srv.url, objects, sleep=waits.append)
        R.check_file(big, f.ensure(big))
    assert srv.requests == [(f"/objects/{big.sha256}", "bytes=4000-")] and f.report.downloaded == big.size - 4000


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_during_download_reclaims_the_space(tmp_path, small_disk):
    bundle = tmp_path / "bundle"
    (bundle / "objects").mkdir(parents=True)
    data = os.urandom(600 * 1024)  # larger than the disk
    entry = R.FileEntry("wheels/big-1.0-py3-none-any.whl", hashlib.sha256(data).hexdigest(), len(data))
    (bundle / "objects" / entry.sha256).write_bytes(data)
    before = shutil.disk_usage(small_disk).used
    with BundleServer(bundle) as srv, pytest.raises(UpdateError, match="disk_full"):
        Fetcher(srv.url, small_disk / "objects", sleep=lambda s: None).ensure(entry)
    assert list((small_disk / "objects").iterdir()) == []
    assert shutil.disk_usage(small_disk).used <= before + 8192


def test_install_refuses_early_when_the_disk_is_too_small(releases, small_disk):
    lay = Layout(Path(small_disk) / "opt")
    inst = Installer(lay, root_key=releases.root.public_key(), clock=time.time)
    inst.accept_key_list(releases.key_list)
    bundle = releases.base / "bundle-1.0.0"
    man = inst.check((bundle / R.MANIFEST_FILE).read_bytes(), None)
    filler = Path(small_disk) / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 16 * 1024))
    with pytest.raises(UpdateError, match="disk_full"):
        inst.install(man, from_folder(bundle, lay.objects))
    assert not lay.installed("1.0.0") and not list(lay.releases.iterdir())
