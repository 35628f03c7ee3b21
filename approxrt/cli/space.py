"""``approxrt branches`` and ``approxrt models``: what the space and registry hold."""

from __future__ import annotations

import click

from approxrt.cli.app import main
from approxrt.cli.common import config_from


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML file overriding default.yaml.",
)
@click.option("--detector", "detectors", multiple=True, help="Only these detectors.")
@click.option("--count", is_flag=True, help="Print only how many branches there are.")
def branches(config_path, detectors, count):
    """List the branch space (one branch name per line)."""
    from approxrt.branches.space import BranchSpace

    config = config_from(config_path)
    try:
        space = BranchSpace.from_config(config, detectors or None)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if count:
        click.echo(len(space))
        return
    click.echo("\n".join(str(b) for b in space))
    click.echo(
        f"# {len(space)} branches, {len(space.kernels)} detector kernels", err=True
    )


@main.command()
@click.option("--models", "models_dir", help="Folder holding model files.")
@click.option(
    "--download",
    "to_download",
    multiple=True,
    help="Download (and verify) this model into the cache (repeatable).",
)
def models(models_dir, to_download):
    """List known models and where each is found (or download some)."""
    from approxrt.branches.models import MODELS, ModelNotFoundError, resolve_model

    for name in to_download:
        try:
            click.echo(f"{name}: {resolve_model(name, models_dir=models_dir)}")
        except (ValueError, OSError) as error:
            raise click.ClickException(str(error)) from None
    for name, spec in MODELS.items():
        try:
            where = str(resolve_model(name, models_dir=models_dir, download=False))
        except ModelNotFoundError:
            where = f"not found (downloads from {spec.url})"
        except ValueError as error:
            where = f"INVALID: {error}"
        click.echo(f"{name:12s} {where}")
