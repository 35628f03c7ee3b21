"""`OutputDir`: a run's output folder that appears only when the run succeeds.

Files are written into a hidden staging folder beside the target
(``.<name>.partial-XXXX``). `commit` moves them into place; `abort` deletes them.
Used as a context manager it commits on a clean exit and aborts on any
exception, so a failed run leaves no half-written output (`approxrt run` catches
Ctrl-C and SIGTERM itself, see `approxrt.signals`, and commits what it
processed)::

    with OutputDir("runs/pets", overwrite=False) as out:
        sinks = MultiSink([out.add(MotResultsSink(out / "results.txt")),
                           out.add(JsonlEventSink(out / "events.jsonl"))])
        for result in run_loop(...):
            sinks.write(result)

A target that does not exist yet appears in one atomic rename. An existing,
non-empty target is refused unless ``overwrite=True``; then only the entries
this run wrote are replaced (each file atomically), the folder's other files
are left alone. A process killed outright (SIGKILL, power loss) cannot clean
up: its staging folder stays behind, hidden, and can be deleted.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TypeVar
from uuid import uuid4

from approxrt.sinks.base import Sink

SinkT = TypeVar("SinkT", bound=Sink)


class OutputDirStateError(RuntimeError):
    """The output folder was already committed or aborted."""


class OutputDir:
    """A staged output folder; see the module docstring.

    Args:
        path: the final output folder.
        overwrite: allow an existing non-empty folder; the files written by
            this run replace same-named ones there, other files stay.

    Raises:
        ValueError: ``path`` is an existing file, or a non-empty folder while
            ``overwrite`` is False.
    """

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path).resolve()
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"output dir: {self.path} exists and is not a folder")
        if self.path.is_dir() and not overwrite:
            entries = sorted(p.name for p in self.path.iterdir())
            if entries:
                shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
                raise ValueError(
                    f"output dir: {self.path} exists and is not empty ({shown}); "
                    "choose another folder or pass overwrite=True to replace the "
                    "files this run writes"
                )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Not tempfile.mkdtemp: its 0700 mode would end up on the final folder.
        staging_name = f".{self.path.name}.partial-{uuid4().hex[:12]}"
        self.staging = self.path.parent / staging_name
        self.staging.mkdir()
        self._sinks: list[Sink] = []
        self._state = "open"

    def __truediv__(self, name: str) -> Path:
        """Where to write ``name`` during the run (inside the staging folder)."""
        self._require_open()
        return self.staging / name

    def add(self, sink: SinkT) -> SinkT:
        """Register ``sink`` to be closed before `commit` (or on `abort`)."""
        self._require_open()
        self._sinks.append(sink)
        return sink

    def commit(self) -> Path:
        """Close the registered sinks and move the output into place.

        Returns:
            The final folder. On a failure to close a sink, the output is
            aborted and the error raised.
        """
        self._require_open()
        try:
            for sink in self._sinks:
                sink.close()
        except BaseException:
            self.abort()
            raise
        if self.path.is_dir() and any(self.path.iterdir()):
            self._merge_into_existing()
        else:
            # rename(2) replaces an empty folder atomically.
            os.replace(self.staging, self.path)
        self._state = "committed"
        return self.path

    def _merge_into_existing(self) -> None:
        for entry in sorted(self.staging.iterdir()):
            target = self.path / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
        self.staging.rmdir()

    def abort(self) -> None:
        """Close the sinks (ignoring their errors) and delete the staging folder.

        A no-op once committed or aborted, so it is safe in ``finally``.
        """
        if self._state != "open":
            return
        self._state = "aborted"
        for sink in self._sinks:
            try:
                sink.close()
            except Exception:  # noqa: S112 - the output is being discarded anyway
                continue
        shutil.rmtree(self.staging, ignore_errors=True)

    def _require_open(self) -> None:
        if self._state != "open":
            raise OutputDirStateError(f"output dir {self.path}: already {self._state}")

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
