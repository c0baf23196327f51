"""``kiosk --config FILE``: the file kiosk-provision enroll writes is enough to run the app, and the
flags override it for the fleet link as well as for the app (as kiosk-agent's flags do)."""

from __future__ import annotations

from pathlib import Path

import pytest

from foundation.errors import ConfigError
from kiosk_ui.app_main import _load, build_parser

ENROLLED = '''kiosk_id = "GD-0042"
site = "tianhe-001"
broker = "mqtts://mqtt.example:8883"
controller_public_key = "k0Sk+pinned/key="
ca_file = "/etc/kiosk/tls/ca.crt.pem"
cert_file = "/etc/kiosk/tls/kiosk-1a.crt.pem"
key_file = "/etc/kiosk/tls/kiosk-1a.key.pem"
enrolment_url = "https://ctl.example:8443"
data_dir = "/var/lib/kiosk"
'''


def test_enrolled_config_runs_as_written(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(ENROLLED)
    config, kiosk_id, data_dir = _load(build_parser().parse_args(["--config", str(cfg)]))
    assert kiosk_id == "GD-0042" and data_dir == Path("/var/lib/kiosk")
    assert str(config.broker) == "mqtts://mqtt.example:8883" and config.controller_public_key == "k0Sk+pinned/key="
    assert config.cert_file.endswith("kiosk-1a.crt.pem") and not config.simulated


def test_flags_override_the_file_for_the_fleet_link(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(ENROLLED)
    args = build_parser().parse_args(["--config", str(cfg), "--broker", "mqtt://127.0.0.1:1884", "--data-dir",
                                      str(tmp_path / "data"), "--language", "en", "--simulated"])
    config, _, data_dir = _load(args)
    assert str(config.broker) == "mqtt://127.0.0.1:1884"  # what the agent runtime connects to
    assert config.data_dir == data_dir == tmp_path / "data" and config.language == "en" and config.simulated


def test_a_bad_override_names_the_field(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(ENROLLED)
    with pytest.raises(ConfigError, match="broker"):
        _load(build_parser().parse_args(["--config", str(cfg), "--broker", "carrier-pigeon://x"]))
