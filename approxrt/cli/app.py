"""The ``approxrt`` command group; each command lives in a module of its own."""

from __future__ import annotations

import logging

import click


class _Commands(click.Group):
    """The command group; a model that cannot be fetched ends any command with
    its message (which URL failed, where the cache is, how to work offline)
    rather than a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OSError as error:
            # Imported only here: a command that loads no model would pay
            # the registry's import (pooch, about 55 ms) to start otherwise.
            from approxrt.branches.models import ModelDownloadError

            if not isinstance(error, ModelDownloadError):
                raise
            raise click.ClickException(str(error)) from None


@click.group(cls=_Commands)
@click.version_option(package_name="approxrt")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (INFO level).")
def main(verbose: bool) -> None:
    """approxrt: adaptive video analytics at the edge."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
