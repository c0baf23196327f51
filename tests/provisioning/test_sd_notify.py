"""sd_notify over a real Unix datagram socket, as systemd provides it."""

import socket

from foundation import sd_notify


def test_notify_reaches_the_socket(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(path)
        srv.settimeout(5)
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"}
        assert sd_notify.notify("READY=1", env=env)
        assert sd_notify.watchdog_ping(env=env)
        assert srv.recv(100) == b"READY=1" and srv.recv(100) == b"WATCHDOG=1"
    assert sd_notify.watchdog_interval(env) == 15.0


def test_outside_systemd_nothing_happens():
    assert sd_notify.notify("READY=1", env={}) is False
    assert sd_notify.watchdog_interval({}) is None
