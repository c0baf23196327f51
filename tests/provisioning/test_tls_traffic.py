"""A kiosk over mutual TLS under load: events published from several threads while the broker
sends to the kiosk all the time. A TLS socket must be used by one thread at a time, or its records
break ("bad record mac") and the broker drops the kiosk; the agent keeps its one connection and
every event arrives."""

from __future__ import annotations

import json
import threading
import time

from contract import payloads, topics
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent
from tests.provisioning.conftest import Client
from tests.support.identities import Issuer
from tests.support.waiting import wait_until

EVENTS = 600


def test_agent_keeps_its_tls_connection_under_concurrent_traffic(tmp_path, fleet_dir, tls_broker):
    with Issuer(fleet_dir, tmp_path / "tls") as issuer:
        cert_file, key_file = issuer.issue("tls-load-1", "site-1")
    cfg = from_mapping(KioskConfig, {"kiosk_id": "tls-load-1", "broker": f"mqtts://127.0.0.1:{tls_broker.port}",
                                     "data_dir": str(tmp_path / "kiosk"), "ca_file": str(fleet_dir.ca_cert),
                                     "cert_file": str(cert_file), "key_file": str(key_file), "keepalive": 5})
    agent = KioskAgent(cfg, device_status=lambda: {})
    drops: list = []
    on_disconnect = agent.client.on_disconnect
    agent.client.on_disconnect = lambda *a: (drops.append(a[3]), on_disconnect(*a))
    ctl = Client(tls_broker.port, fleet_dir.ca_cert, fleet_dir.controller_cert, fleet_dir.controller_key, "ctl-load")
    assert ctl.connect()
    ctl.subscribe("kiosk/v1/tls-load-1/events")
    # A controller from before event acknowledgements (its presence lacks acks_events): the kiosk
    # drops each event on the broker's PUBACK, so every one of them crosses the TLS link once.
    older = {k: v for k, v in payloads.controller_online(time.time()).items() if k != "acks_events"}
    ctl.c.publish(topics.CONTROLLER_STATUS, topics.encode_to_kiosk(older), 1, retain=True).wait_for_publish(10)
    agent.start(wait=20)
    assert wait_until(lambda: not agent.controller_acks, timeout=10)
    stop = threading.Event()

    def chatter():  # the broker writes to the kiosk while it writes its events
        n = 0
        while not stop.is_set():
            n += 1
            ctl.c.publish("kiosk/v1/tls-load-1/config/desired", json.dumps({"v": 1, "version": n, "config": {}}), 1,
                          retain=True)
            stop.wait(0.002)

    def emitter(k: int):
        for i in range(EVENTS // 3):
            agent.emit("load", {"worker": k, "i": i})

    threads = [threading.Thread(target=chatter)] + [threading.Thread(target=emitter, args=(k,)) for k in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads[1:]:
            t.join(60)

        def got() -> int:
            return sum(1 for topic, body in ctl.messages if json.loads(body).get("type") == "load")
        assert wait_until(lambda: got() >= EVENTS, timeout=60), (got(), drops)
        assert drops == []
    finally:
        stop.set()
        threads[0].join(10)
        agent.stop()
        ctl.close()
