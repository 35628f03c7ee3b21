"""Load processes that never outlive the program that started them.

Every load runs in a child process, and three layers make sure none is left
behind when the parent goes away:

- the parent stops its children on `ContentionGenerator.close` (and, as daemonic
  ``multiprocessing`` children, when its interpreter exits normally);
- on Linux each child asks the kernel for SIGKILL when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``), which also covers a SIGKILL of the parent, and
  checks right after that its parent is still the one that started it, which
  closes the race of a parent dying before the request was made;
- a watchdog thread in each child polls its parent pid, for systems without prctl.

The kernel sends the death signal when the *thread* that started the child ends,
so start generators from a thread that lives as long as they do (the main one).
Children are started with ``spawn`` (fork + exec): safe while the parent runs
ONNX Runtime or torch threads, which ``fork`` alone is not. ``spawn`` also starts
multiprocessing's own resource tracker; it exits by itself once the parent and
every child have closed its pipe, so it follows them.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_WATCHDOG_POLL_S = 0.5
_JOIN_TIMEOUT_S = 2.0

SPAWN = multiprocessing.get_context("spawn")


class ContentionError(RuntimeError):
    """This machine cannot produce the contention asked for, or a load process died."""


def _find_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up once at import, so that a pre-exec hook has nothing left to load.
_PRCTL = _find_prctl()


def _ask_kernel_to_kill_me_with_parent() -> None:
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def die_with_parent(parent_pid: int) -> None:
    """First call in every load process: end this process when `parent_pid` ends.

    SIGINT is ignored: Ctrl-C reaches the whole process group, and the parent
    stops its children itself.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _ask_kernel_to_kill_me_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the request took hold
        os._exit(1)
    exit_when_parent_exits(parent_pid)


def exit_when_parent_exits(parent_pid: int) -> None:
    """Watch from a thread of this process that `parent_pid` is still its parent."""
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True
    ).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_WATCHDOG_POLL_S)
    os._exit(1)


def exec_hook_dying_with(parent_pid: int) -> Callable[[], None]:
    """A ``subprocess`` ``preexec_fn`` that ties an external program to `parent_pid`.

    The death signal survives ``exec`` of an ordinary (not set-user-ID) program.
    The hook runs between fork and exec, so it does as little as it can: one prctl
    through a function looked up at import, one getppid.
    """

    def hook() -> None:
        _ask_kernel_to_kill_me_with_parent()
        if os.getppid() != parent_pid:
            os._exit(1)

    return hook


def start_child(
    target: Callable[..., None], args: tuple, name: str
) -> multiprocessing.process.BaseProcess:
    """Start `target(parent_pid, *args)` in a daemonic spawned child process."""
    process = SPAWN.Process(
        target=target, args=(os.getpid(), *args), name=name, daemon=True
    )
    process.start()
    return process


def stop_children(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """SIGTERM every child, wait, then SIGKILL those still alive; reap them all."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + _JOIN_TIMEOUT_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(_JOIN_TIMEOUT_S)


def check_alive(
    processes: list[multiprocessing.process.BaseProcess], what: str
) -> None:
    """Raise `ContentionError` naming the first of `processes` that has exited."""
    for process in processes:
        if not process.is_alive():
            raise ContentionError(
                f"{what} process {process.pid} ({process.name}) exited with code "
                f"{process.exitcode}; the contention it made is gone"
            )


def wait_until(
    ready: Callable[[], bool],
    processes: list[multiprocessing.process.BaseProcess],
    what: str,
    timeout_s: float,
) -> None:
    """Poll `ready` until true; raise if a process dies or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        check_alive(processes, what)
        if time.monotonic() > deadline:
            raise ContentionError(f"{what} was not ready after {timeout_s:g} s")
        time.sleep(0.02)


def cores_from_last() -> list[int]:
    """Cores this process may use, the last one first (loads fill from the top)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0), reverse=True)
    return list(range((os.cpu_count() or 1) - 1, -1, -1))


def pin(pid: int, core: int) -> None:
    """Pin process `pid` to `core` where the OS allows it; elsewhere let it float."""
    try:
        os.sched_setaffinity(pid, {core})
    except (AttributeError, OSError) as error:
        logger.debug("could not pin process %d to core %d: %s", pid, core, error)
