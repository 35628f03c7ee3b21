"""The daemon's systemd handshake over a real NOTIFY_SOCKET, as systemd gives it."""

import socket

from serve_parts import Daemon


def test_ready_watchdog_and_stopping_reach_systemd(tmp_path):
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(20)
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}
    daemon = Daemon({"streams": []}, tmp_path, env)
    try:
        daemon.start()
        said = [listener.recv(256).decode() for _ in range(3)]
        assert said[0] == "READY=1"
        assert said[1:] == ["WATCHDOG=1", "WATCHDOG=1"]
        assert daemon.terminate() == 0
        rest = []
        while "STOPPING=1" not in rest:
            rest.append(listener.recv(256).decode())
    finally:
        daemon.kill()
        listener.close()
