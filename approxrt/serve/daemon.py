"""`run_daemon`: the streams, the HTTP API and systemd's handshake, until a signal.

Start-up: every stream of the settings is checked and started (one that cannot
run stops the start with its reason), the API listens, systemd is told READY=1
(when started by systemd with Type=notify) and, under WatchdogSec=, pinged at
half the watchdog period for as long as the API answers. SIGTERM or SIGINT:
the API stops taking requests, every stream drains its queue and flushes its
sinks (events on disk, MQTT spool sent or kept), systemd hears STOPPING=1, and
the process exits 0.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
import urllib.request

import sdnotify
import uvicorn

from approxrt.config import Config
from approxrt.serve.app import create_app
from approxrt.serve.manager import StreamManager
from approxrt.serve.spec import ServeSettings
from approxrt.signals import stop_on_signals

log = logging.getLogger(__name__)

TRIM_EVERY_S = 30.0


def run_daemon(settings: ServeSettings, config: Config, token: str | None) -> None:
    """Serve until SIGTERM/SIGINT; see the module docstring.

    Raises:
        ValueError: a stream of the settings cannot run (nothing keeps running).
    """
    _tune_malloc()
    manager = StreamManager(settings, config)
    notifier = sdnotify.SystemdNotifier()
    with stop_on_signals() as stop:
        try:
            for spec in settings.streams:
                manager.add(spec)
        except Exception:
            manager.shutdown()
            raise
        app = create_app(manager, token)
        host, port = settings.host_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning")
        )
        # In a thread, uvicorn leaves the signals to us (it only takes them
        # in the main thread), so a stop drains the streams before exiting.
        api = threading.Thread(target=server.run, name="api", daemon=True)
        api.start()
        if not _wait_started(server, api):
            manager.shutdown()
            raise ValueError(f"listen {settings.listen}: the API could not start")
        app.state.ready = True
        notifier.notify("READY=1")
        log.warning("approxrt serve: listening on http://%s", settings.listen)
        _keep_alive(stop, notifier, f"http://{host}:{port}/health")
        notifier.notify("STOPPING=1")
        app.state.ready = False
        server.should_exit = True
        api.join(timeout=10)
        manager.shutdown()


def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _trim_heap() -> None:
    """glibc keeps freed heap pages; a reconnecting camera's decoder frees
    megabytes at a time, which otherwise stay in the daemon's RSS."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _tune_malloc(arenas: int = 2, mmap_threshold_bytes: int = 256 * 1024) -> None:
    """Keep glibc's heap from creeping (each part unless its variable is set).

    - Arenas capped at ``arenas`` (``MALLOC_ARENA_MAX``): glibc gives threads
      that allocate arenas of their own, up to eight per core, and every camera
      reconnect starts new decoding threads.
    - A fixed mmap threshold (``MALLOC_MMAP_THRESHOLD_``): glibc otherwise raises
      the threshold to the size of every mmapped block freed, so after the first
      freed frame buffer every later frame (0.5-2.7 MB) comes from the heap,
      whose freed holes stay in RSS. With the threshold fixed each frame is its
      own mapping, given back when freed.

    Measured in docs/benchmarks/daemon.md. A no-op where the C library is not glibc.
    """
    libc = _glibc()
    if libc is None:
        return
    m_arena_max, m_mmap_threshold = -8, -3  # mallopt's parameters (malloc.h)
    if "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(m_arena_max, arenas)
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(m_mmap_threshold, mmap_threshold_bytes)


def _wait_started(server: uvicorn.Server, api: threading.Thread) -> bool:
    while api.is_alive() and not server.started:
        time.sleep(0.05)
    return server.started


def _keep_alive(stop, notifier: sdnotify.SystemdNotifier, health_url: str) -> None:
    """Until ``stop``: ping systemd's watchdog while the API answers, and hand
    freed memory back to the system every `TRIM_EVERY_S`."""
    watchdog_us = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
    period_s = watchdog_us / 2e6 if watchdog_us else 1.0
    trimmed_s = time.monotonic()
    while not stop.wait(period_s):
        if watchdog_us and _answers(health_url):
            notifier.notify("WATCHDOG=1")
        if time.monotonic() - trimmed_s >= TRIM_EVERY_S:
            _trim_heap()
            trimmed_s = time.monotonic()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
            return response.status == 200
    except OSError:
        return False
