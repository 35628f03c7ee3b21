"""Fixtures starting the daemon's real parts (see `serve_parts`); each is
stopped when its test ends."""

from __future__ import annotations

import pytest
from serve_parts import Daemon, Helper


@pytest.fixture
def helpers():
    started: list[Helper] = []

    def start(args, ready_word="ready", timeout_s=20.0) -> Helper:
        helper = Helper(args, ready_word).start(timeout_s)
        started.append(helper)
        return helper

    yield start
    for helper in started:
        helper.stop()


@pytest.fixture
def daemons(tmp_path):
    started: list[Daemon] = []

    def start(settings: dict, env: dict | None = None, name: str = "d") -> Daemon:
        workdir = tmp_path / name
        workdir.mkdir()
        daemon = Daemon(settings, workdir, env).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()
