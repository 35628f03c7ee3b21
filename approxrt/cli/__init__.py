"""The ``approxrt`` command: one module per command, registered on `main`."""

from approxrt.cli import bench, evaluate, run, space  # noqa: F401  (registers commands)
from approxrt.cli.app import main

__all__ = ["main"]
