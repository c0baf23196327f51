"""Pure parts of the fleet link: codec, signing, config layers, alarm rules, handlers, journal."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import commands as kcmd
from contract import desired_config, signing, topics, versions
from controller import alarms, commands, config_layers, handlers
from controller.effects import CommandFinished
from foundation.errors import CommandRejected, ConfigError, RemoteProtocolError
from kiosk_ui.agent.journal import Journal


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["status", "events", "telemetry", "devices/p", "cmd/x/result",
                                                  "config/reported"]))
def test_any_payload_parses_or_raises_protocol_error(payload, kind):
    try:
        topics.parse(f"kiosk/v1/K1/{kind}", payload)
    except RemoteProtocolError:
        pass


def test_canonical_body_and_signature():
    key = Ed25519PrivateKey.generate()
    body = {"v": 1, "id": "abcdefgh", "args": {"b": 1, "a": "中"}, "kiosk_id": "K1"}
    assert signing.canonical(body) == '{"args":{"a":"中","b":1},"id":"abcdefgh","kiosk_id":"K1","v":1}'.encode()
    signed = signing.sign(key, body)
    signing.verify(key.public_key(), signed)
    with pytest.raises(CommandRejected) as exc:
        signing.verify(key.public_key(), {**signed, "id": "other123"})
    assert exc.value.reason == "bad_signature"
    assert signing.parse_public_key(signing.public_key_text(key))
    with pytest.raises(ConfigError, match="controller_public_key"):
        signing.parse_public_key("c2hvcnQ=")


def test_key_file_is_private(tmp_path):
    signing.load_or_create_key(tmp_path)
    assert (tmp_path / signing.KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_config_time_zone_is_a_zone_zoneinfo_knows():
    assert desired_config.validate({"time_zone": "Europe/London"}) == {"time_zone": "Europe/London"}
    for bad in ("Mars/Olympus", "", 8, "../../etc/passwd", "x" * 65):
        with pytest.raises(ConfigError) as exc:
            desired_config.validate({"time_zone": bad})
        assert exc.value.field == "time_zone" and "IANA time zone" in str(exc.value)


def test_the_controllers_time_zone_rides_with_every_desired_config():
    state = handlers.FleetState(time_zone="Europe/London")
    assert handlers.desired_message(state, "k1") is None  # no layer: nothing to send
    state.layers = {"fleet": {"version": 3, "body": {"volume": 40}}, "kiosk:k1": {"version": 4, "body": {"volume": 50}}}
    handlers._record(state, "k1", 0.0)["contract"] = versions.CURRENT  # k1's birth said 1.3 or later
    msg = handlers.desired_message(state, "k1")
    assert msg is not None
    body = msg.body
    assert body["version"] == 4 and body["config"] == {"volume": 50, "time_zone": "Europe/London"}
    assert desired_config.validate(body["config"]) == body["config"]  # what the kiosk checks on apply
    # Nobody sets it per layer, so no kiosk can disagree with the console.
    with pytest.raises(ConfigError) as exc:
        config_layers.validate_layer({"time_zone": "UTC"})
    assert exc.value.field == "time_zone" and "controller's time_zone setting" in str(exc.value)


def test_a_kiosk_on_an_older_contract_gets_only_the_config_keys_it_knows():
    # A 1.2 kiosk refuses a desired config with a key it does not know: during a roll-out it must keep
    # applying configs, so the controller leaves time_zone (1.3) out for it, and for an unknown kiosk.
    state = handlers.FleetState(time_zone="Europe/London")
    state.layers = {"fleet": {"version": 3, "body": {"volume": 40}}}
    for kiosk, contract in (("old", "1.2"), ("unknown", None)):
        if contract:
            handlers._record(state, kiosk, 0.0)["contract"] = contract
        msg = handlers.desired_message(state, kiosk)
        assert msg is not None and msg.body["config"] == {"volume": 40}
    # When it comes back on 1.3 (updated), its birth makes the controller send the config again, now whole.
    state.kiosks["old"] = {**handlers._record(state, "old", 0.0), "reported": {"version": 3}}
    birth = topics.parse(topics.topic("old", "status"), topics.encode(
        {"state": "online", "mode": "normal", "boot_id": "b2", "versions": {}, "devices": {}}))
    _, out = handlers.handle(state, birth, 1.0)
    sent = [o.body for o in out if o.topic.endswith("config/desired")]
    assert sent and sent[0]["config"] == {"volume": 40, "time_zone": "Europe/London"}


def test_config_validate_merge_diff():
    with pytest.raises(ConfigError, match=r"printer\.density"):
        desired_config.validate({"printer": {"density": 99}})
    merged = desired_config.merge({"volume": 1, "printer": {"density": 2}}, {"printer": {"paper_low_warning": True}})
    assert merged == {"volume": 1, "printer": {"density": 2, "paper_low_warning": True}}
    assert desired_config.diff({"printer": {"density": 2}}, {"printer": {"density": 3}}) == [
        {"key": "printer.density", "desired": 2, "reported": 3}]


def test_alarm_rules_file_is_valid_and_bad_rules_are_named(tmp_path):
    assert {r.id for r in alarms.load_rules()} >= {"kiosk_offline", "paper_out", "paper_low", "cover_open", "tamper",
                                                   "enclosure_hot", "device_error", "host_power_cycled"}
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nid="x"\nseverity="apocalyptic"\nsource="kiosk"\nmessage="m"\nfield="state"\n')
    with pytest.raises(ConfigError, match=r"rule\[0\]\.severity"):
        alarms.load_rules(bad)


def _state():
    return handlers.FleetState(telemetry_period=10, stale_after_periods=3, rules=alarms.load_rules())


def _msg(kind, body, name=None):
    suffix = f"{kind}/{name}" if name else kind
    return topics.parse(f"kiosk/v1/K1/{suffix}", topics.encode(body))


def test_stale_after_three_missed_periods_and_back():
    s = _state()
    s, _ = handlers.handle(s, _msg("status", {"state": "online", "boot_id": "b"}), 100.0)
    s, _ = handlers.tick(s, 130.0)
    assert s.kiosks["K1"]["state"] == "online"
    s, _ = handlers.tick(s, 130.1)
    assert s.kiosks["K1"]["state"] == "stale" and ("K1", "kiosk_offline", "") in s.open_alarms
    s, _ = handlers.handle(s, _msg("telemetry", {"uptime": 1}), 131.0)
    assert s.kiosks["K1"]["state"] == "online" and not s.open_alarms


def test_silence_counts_only_while_the_controller_hears_the_broker():
    # Soak (issue 17): a restarted controller called every kiosk stale on its first sweep, before
    # the retained births had come in. Silence counts from the controller's connect, never while deaf.
    s = _state()
    s, _ = handlers.handle(s, _msg("status", {"state": "online", "boot_id": "b"}), 100.0)
    s.listening_since = None  # disconnected (or not yet connected after a restart)
    s, _ = handlers.tick(s, 500.0)
    assert s.kiosks["K1"]["state"] == "online" and not s.open_alarms
    s.listening_since = 600.0  # connected again
    s, _ = handlers.tick(s, 630.0)
    assert s.kiosks["K1"]["state"] == "online" and not s.open_alarms
    s, _ = handlers.tick(s, 630.1)  # still silent three periods after the connect: stale after all
    assert s.kiosks["K1"]["state"] == "stale" and ("K1", "kiosk_offline", "") in s.open_alarms
    assert s.kiosks["K1"]["reason"] == "no telemetry for 530 s"


def test_old_will_does_not_take_a_rebooted_kiosk_offline():
    s = _state()
    s, _ = handlers.handle(s, _msg("status", {"state": "online", "boot_id": "new"}), 1.0)
    s, _ = handlers.handle(s, _msg("status", {"state": "offline", "reason": "lwt", "boot_id": "old"}), 2.0)
    assert s.kiosks["K1"]["state"] == "online"


def test_command_lifecycle_queued_sent_timed_out_and_expired():
    s = _state()
    c1 = {**commands.new_command("K1", "reboot", {}, "op", 0.0, ttl=100, timeout=5, command_id="cmd00001"),
          "wire": {"x": 1}}
    s, out = handlers.queue_command(s, c1, 0.0)
    assert out == [] and c1["status"] == "queued"  # unknown kiosk: held, not sent
    s, out = handlers.handle(s, _msg("status", {"state": "online"}), 1.0)
    assert [o.topic for o in out] == ["kiosk/v1/K1/cmd/reboot"] and c1["status"] == "sent"
    s, _ = handlers.tick(s, 7.0)
    assert CommandFinished("cmd00001", "timed_out", 7.0, "no result within 5 s of sending") in s.effects
    c2 = {**commands.new_command("K2", "reboot", {}, "op", 0.0, ttl=10, command_id="cmd00002"), "wire": {}}
    s, _ = handlers.queue_command(s, c2, 0.0)
    s, _ = handlers.tick(s, 10.0)
    assert any(e.command_id == "cmd00002" and e.status == "expired" for e in s.effects
               if isinstance(e, CommandFinished))


def test_journal_is_bounded_and_remembers_commands(tmp_path):
    j = Journal(tmp_path / "j.sqlite3", max_events=3)
    assert [j.append("t", b"%d" % i) for i in range(5)] == [0, 0, 0, 1, 1]
    assert [p for _, _, p, _ in j.pending(0)] == [b"2", b"3", b"4"] and j.depth() == 3
    j.remove([s for s, _, _, _ in j.pending(0)][:2])
    assert j.depth() == 1
    assert j.first_sight("c1", 100.0, 0.0) and not j.first_sight("c1", 100.0, 1.0)


def test_agent_overflow_says_so_in_an_event(tmp_path):
    from foundation.settings import KioskConfig, from_mapping
    from kiosk_ui.agent.agent import KioskAgent

    cfg = from_mapping(KioskConfig, {"kiosk_id": "K1", "broker": "mqtt://127.0.0.1:1", "data_dir": str(tmp_path)})
    agent = KioskAgent(cfg, max_events=5)
    for n in range(8):
        agent.emit("x", {"n": n})
    bodies = [json.loads(p) for _, _, p, _ in agent.journal.pending(0)]
    assert len(bodies) == 5 and bodies[-1]["type"] == "journal_overflow" and bodies[-1]["dropped"] == 1
    assert [b["seq"] for b in bodies] == sorted(b["seq"] for b in bodies)
    agent.journal.close()


def test_kiosk_command_checks():
    key = Ed25519PrivateKey.generate()
    body = signing.sign(key, kcmd.wire_body(commands.new_command("K1", "set_mode", {"mode": "normal"}, "op",
                                                                     100.0, command_id="abcdefgh")))
    seen: set[str] = set()

    def first(cid, exp, now):
        new = cid not in seen
        seen.add(cid)
        return new

    with pytest.raises(CommandRejected, match="no_key"):
        kcmd.verify(body, None, 100.0, first)
    with pytest.raises(CommandRejected, match="expired"):
        kcmd.verify(body, key.public_key(), 1000.0, first)
    assert not seen  # an expired command is not remembered
    kcmd.verify(body, key.public_key(), 101.0, first)
    with pytest.raises(CommandRejected, match="replayed"):
        kcmd.verify(body, key.public_key(), 102.0, first)
    with pytest.raises(CommandRejected, match="bad_arguments"):
        kcmd.check_args("power_cycle", {"device": "printer", "off_seconds": 600})
    with pytest.raises(CommandRejected, match="wrong_kiosk"):
        kcmd.parse("kiosk/v1/K2/cmd/set_mode", json.dumps(body).encode(), "K2")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_kiosk_command_parser_only_rejects(payload):
    try:
        kcmd.parse("kiosk/v1/K1/cmd/reboot", payload, "K1")
    except CommandRejected:
        pass


def test_desired_config_takes_a_whole_service_catalogue():
    import pytest

    from contract import desired_config
    from contract.catalogue import load_default_document
    from foundation.errors import ConfigError

    doc = load_default_document()
    assert desired_config.validate({"service_catalogue": doc}) == {"service_catalogue": doc}
    broken = {**doc, "services": [{**doc["services"][0], "names": {"zh-CN": "取号"}}]}
    with pytest.raises(ConfigError, match="service_catalogue") as exc:
        desired_config.validate({"service_catalogue": broken})
    assert "names" in str(exc.value)


def test_prune_keeps_recent_rows_and_blanks_old_call_back_numbers(tmp_path):
    from controller.service_backend import ensure_schema, forget_phones, handle_request
    from controller.store import Store

    store = Store(tmp_path)
    now = 1_764_000_000.0
    c = store.conn
    for ts in (now - 8 * 86400, now - 60):
        c.execute("INSERT INTO telemetry_history (kiosk_id, ts, body) VALUES ('k', ?, '{}')", (ts,))
        c.execute("INSERT INTO events (id, kiosk_id, seq, type, body, received_at) VALUES (?, 'k', 1, 'boot', '{}', ?)",
                  (f"e{ts}", ts))
    store.prune(history_before=now - 7 * 86400, events_before=now - 90 * 86400)
    forget_phones(c, now - 30 * 86400)  # no service table yet: nothing to forget, no error
    assert [r[0] for r in c.execute("SELECT ts FROM telemetry_history")] == [now - 60]
    assert c.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2  # 8 days is within 90
    ensure_schema(c)
    for when in (now - 31 * 86400, now - 86400):
        r = handle_request(c, "k", {"service": "feedback", "op": "submit",
                                    "args": {"category": "other", "urgency": "normal", "phone": "13812345678"}}, when)
        assert r["ok"], r
    forget_phones(c, now - 30 * 86400)
    rows = c.execute("SELECT created, phone, category FROM svc_feedback ORDER BY created").fetchall()
    assert [tuple(r) for r in rows] == [(now - 31 * 86400, "", "other"), (now - 86400, "13812345678", "other")]
    store.close()


def test_retention_settings_must_be_positive():
    from foundation.settings import ControllerConfig, from_mapping

    cfg = from_mapping(ControllerConfig, {"broker": "mqtt://127.0.0.1:1883", "data_dir": "x"})
    assert (cfg.history_retention_days, cfg.event_retention_days, cfg.phone_retention_days) == (7.0, 90.0, 30.0)
    with pytest.raises(ConfigError) as err:
        from_mapping(ControllerConfig, {"broker": "mqtt://127.0.0.1:1883", "data_dir": "x", "phone_retention_days": 0})
    assert err.value.field == "phone_retention_days"


def test_device_error_only_for_faults_without_a_specific_rule():
    from contract import device_status

    rules = alarms.load_rules()

    def raised(detail, state="idle"):
        status = device_status.build(state, detail)
        return sorted(c.key[1] for c in alarms.evaluate(rules, "device", "K1", "printer", status, {}))

    jammed = device_status.printer_detail(known=True, paper="ok", cover_open=False, cutter_error=True)
    assert raised(jammed) == ["device_error"]  # no rule of its own: the fallback names the fault
    change = alarms.evaluate(rules, "device", "K1", "printer", device_status.build("idle", jammed), {})[0]
    assert change.params == {"device": "printer", "fault": "paper_jammed"}
    assert change.message == "printer: paper_jammed"
    out_and_open = device_status.printer_detail(known=True, paper="out", cover_open=True)
    assert raised(out_and_open) == ["cover_open", "paper_out"]  # two faults, two alarms, no third
    # The fallback clears once a specific rule covers the device, and stays clear.
    open_keys = {("K1", "device_error", "printer"): {}}
    changes = alarms.evaluate(rules, "device", "K1", "printer", device_status.build("idle", out_and_open), open_keys)
    assert sorted((c.action, c.key[1]) for c in changes) == [("clear", "device_error"), ("raise", "cover_open"),
                                                            ("raise", "paper_out")]


def test_alarm_rule_params_must_be_a_list(tmp_path):
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nid="x"\nseverity="major"\nsource="kiosk"\nmessage="m"\nfield="state"\nparams="state"\n')
    with pytest.raises(ConfigError, match=r"rule\[0\]\.params"):
        alarms.load_rules(bad)


def test_a_late_older_birth_does_not_overwrite_a_newer_status():
    s = _state()
    s, _ = handlers.handle(s, _msg("status", {"state": "online", "boot_id": "b", "mode": "maintenance", "ts": 20.0}),
                           1.0)
    s, _ = handlers.handle(s, _msg("status", {"state": "online", "boot_id": "b", "mode": "normal", "ts": 10.0}), 2.0)
    assert s.kiosks["K1"]["mode"] == "maintenance"
    s, _ = handlers.handle(s, _msg("status", {"state": "online", "boot_id": "b", "mode": "normal", "ts": 30.0}), 3.0)
    assert s.kiosks["K1"]["mode"] == "normal"
