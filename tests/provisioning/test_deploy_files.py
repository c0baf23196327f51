"""The deployment files parse and carry the settings the design depends on."""

import configparser
import re

from tests.support.processes import REPO

DEPLOY = REPO / "deploy"


def _unit(name):
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(DEPLOY / "systemd" / name)
    return cp


def test_kiosk_unit_is_notify_with_watchdog():
    u = _unit("kiosk.service")
    assert u["Service"]["Type"] == "notify" and int(u["Service"]["WatchdogSec"]) > 0
    assert u["Service"]["Restart"] == "always" and "--config /etc/kiosk/kiosk.toml" in u["Service"]["ExecStart"]
    assert _unit("kiosk-controller.service")["Service"]["Restart"] == "always"
    assert _unit("kiosk-cert-renew.timer")["Timer"]["OnCalendar"] == "monthly"


def test_kiosk_units_run_the_release_that_current_names():
    """Every kiosk program comes from the release layout (docs/updates.md), never a checkout's .venv."""
    renew = _unit("kiosk-cert-renew.service")["Service"]["ExecStart"]
    assert renew.startswith("/opt/kiosk/current/venv/bin/kiosk-provision renew ")
    assert _unit("kiosk.service")["Service"]["ExecStart"].startswith("/opt/kiosk/current/venv/bin/")
    for unit in (DEPLOY / "systemd").glob("kiosk*.service"):
        if unit.name != "kiosk-controller.service":  # the controller server installs into /opt/kiosk/.venv
            assert "/opt/kiosk/.venv" not in unit.read_text(), unit.name


def test_udev_rules_are_well_formed():
    lines = [s for s in (DEPLOY / "udev" / "99-kiosk-serial.rules").read_text().splitlines() if s and s[0] != "#"]
    assert len(lines) == 6
    for line in lines:
        for part in (p.strip() for p in line.split(", ")):
            assert re.fullmatch(r'[A-Z_]+(\{[A-Za-z_]+\})?(==|\+=|=)"[^"]*"', part), part


def test_mosquitto_template_requires_client_certificates():
    text = (DEPLOY / "mosquitto" / "kiosk-fleet.conf.template").read_text()
    for line in ("require_certificate true", "use_identity_as_username true", "allow_anonymous false"):
        assert line in text.splitlines()
    # Every line of the generated listener (the one the TLS tests run) is in the template too.
    from pathlib import Path

    from provisioning import broker_conf

    certs = Path("/etc/mosquitto/certs")
    generated = broker_conf.listener_lines(port=8883, bind="", ca_file=certs / "ca.crt.pem",
                                           cert_file=certs / "server.crt.pem", key_file=certs / "server.key.pem",
                                           crl_file=certs / "crl.pem", acl_file=Path("/etc/mosquitto/kiosk.acl"))
    assert [line for line in generated if line not in text.splitlines()] == []
