"""Contention on a stream's clock: generator levels and a real co-running program.

`ContentionDriver.advance(t_s)` applies everything a `ContentionSpec` has due by
``t_s`` seconds of the stream. A paced run calls it from a background thread
(`follow`) on the stream clock; a recording run calls it before each frame with
the frame's own time, so both see the same load at the same moment of video.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

from approxrt.bench.scenario import ContentionSpec
from approxrt.contention import ContentionLevels


class ContentionDriver:
    """Applies ``spec`` through ``generator`` (None: a spec with no levels)."""

    def __init__(self, spec: ContentionSpec, generator=None) -> None:
        if spec.needs_generator and generator is None:
            raise ValueError("contention: level steps need the contention generator")
        self.spec = spec
        self.generator = generator
        self._next_step = 0
        self._program: subprocess.Popen | None = None
        self._program_done = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def advance(self, t_s: float) -> None:
        steps = self.spec.steps
        while self._next_step < len(steps) and steps[self._next_step].at_s <= t_s:
            self.generator.set(steps[self._next_step].levels)
            self._next_step += 1
        program = self.spec.program
        if program is None or self._program_done:
            return
        if self._program is None and t_s >= program.at_s:
            self._program = subprocess.Popen(
                program.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        if self._program is not None and program.until_s is not None:
            if t_s >= program.until_s:
                self._end_program()

    def follow(self, now_s: Callable[[], float | None], period_s: float = 0.02) -> None:
        """Advance on ``now_s()`` (None until the stream starts) in a thread."""

        def loop() -> None:
            while not self._stop.wait(period_s):
                t_s = now_s()
                if t_s is not None:
                    self.advance(t_s)

        self._thread = threading.Thread(target=loop, name="contention", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop following, end the program, idle the generator."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._end_program()
        if self.generator is not None:
            self.generator.set(ContentionLevels())

    def _end_program(self) -> None:
        if self._program is not None and self._program.poll() is None:
            self._program.terminate()
            try:
                self._program.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._program.kill()
                self._program.wait()
        self._program_done = self._program is not None

    def __enter__(self) -> ContentionDriver:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
