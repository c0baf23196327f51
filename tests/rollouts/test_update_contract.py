"""The update joint's contract: cmd/update arguments and update/state, built and parsed by
contract/updates.py, with its topic, flags and broker ACL line."""

from __future__ import annotations

import pytest

from contract import commands, topics, updates
from foundation.errors import CommandRejected, RemoteProtocolError
from provisioning import broker_conf

SHA = "ab" * 32


def test_update_args_pass_the_kiosk_check_and_bad_ones_are_named():
    args = updates.update_args(version="1.4.0", url="https://ctl:8443/releases/kiosk/1.4.0", manifest_sha256=SHA,
                               rollout="r-7")
    commands.check_args("update", args)
    for key, bad in [("version", "1.4"), ("url", "ftp://x"), ("manifest_sha256", "AB" * 32), ("rollout", "a b")]:
        with pytest.raises(CommandRejected, match=f"bad or missing {key!r}|bad value for {key!r}"):
            commands.check_args("update", {**args, key: bad})
    with pytest.raises(CommandRejected, match="unknown argument 'force'"):
        commands.check_args("update", {**args, "force": True})
    with pytest.raises(ValueError, match="manifest_sha256"):
        updates.update_args(version="1.4.0", url="https://x/", manifest_sha256="00")


@pytest.mark.parametrize("state,reason", [("downloading", ""), ("installed", ""), ("switched", ""),
                                          ("committed", ""), ("rolled_back", "crashed: exit status 1"),
                                          ("deferred", "deferred (locked): session held 901 s (limit 900 s)"),
                                          ("failed", "manifest_mismatch: ...")])
def test_update_state_round_trips_through_the_fleet_codec(state, reason):
    body = updates.state("GD-0001", state=state, version="1.4.0", ts=1.5, reason=reason, running="1.3.2",
                         rollout="r-7", command="c" * 16)
    parsed = topics.parse(topics.topic("GD-0001", "update/state"), topics.encode(body))
    assert parsed.kind == "update/state" and parsed.kiosk_id == "GD-0001"
    m = parsed.model
    assert (m.state, m.version, m.reason, m.running, m.rollout, m.command, m.ts) == \
        (state, "1.4.0", reason, "1.3.2", "r-7", "c" * 16, 1.5)
    assert m.final == (state in ("committed", "rolled_back", "failed"))
    assert topics.FLAGS["update/state"] == (1, True)
    assert ("kiosk/v1/+/update/state", 1) in topics.subscriptions_for_controller()


@pytest.mark.parametrize("body,named", [
    ({"state": "exploded", "version": "1.0.0"}, "state"),
    ({"state": "committed", "version": "latest"}, "version"),
    ({"state": "failed", "version": "1.0.0"}, "needs a reason"),
    ({"state": "committed", "version": "1.0.0", "reason": 5}, "reason"),
])
def test_bad_update_state_is_refused_naming_the_field(body, named):
    with pytest.raises(RemoteProtocolError, match=named):
        updates.parse_state(body)


def test_builder_refuses_what_the_parser_would():
    with pytest.raises(ValueError):
        updates.state("K", state="rolled_back", version="1.0.0", ts=0)
    with pytest.raises(ValueError):
        updates.state("K", state="done", version="1.0.0", ts=0)


def test_payload_for_another_kiosk_is_refused():
    body = updates.state("GD-0002", state="committed", version="1.0.0", ts=0)
    with pytest.raises(RemoteProtocolError, match="published under kiosk"):
        topics.parse(topics.topic("GD-0001", "update/state"), topics.encode(body))


def test_broker_acl_lets_a_kiosk_write_only_its_own_update_state():
    acl = broker_conf.acl_text()
    assert "pattern write kiosk/v1/%u/update/state" in acl.splitlines()
    assert "pattern read kiosk/v1/%u/update/state" not in acl
