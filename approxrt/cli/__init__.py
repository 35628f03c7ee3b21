"""The ``approxrt`` command: one module per command, registered on `main`."""

# Importing a command's module registers it on `main`.
from approxrt.cli import (  # noqa: F401
    bench,
    contend,
    evaluate,
    profile,
    run,
    serve,
    space,
)
from approxrt.cli.app import main

__all__ = ["main"]
