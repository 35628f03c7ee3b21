"""The ``approxrt`` command group; each command lives in a module of its own."""

from __future__ import annotations

import logging

import click


@click.group()
@click.version_option(package_name="approxrt")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (INFO level).")
def main(verbose: bool) -> None:
    """approxrt: adaptive video analytics at the edge."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
