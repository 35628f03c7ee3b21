"""Reports name the command that made them, however the CLI was started."""

from __future__ import annotations

import click
from click.testing import CliRunner

from approxrt.cli.common import command_line


@click.group()
def root():
    pass


@root.group()
def bench():
    pass


@bench.command()
@click.argument("scenario")
@click.option("--out")
def adaptive(scenario, out):
    click.echo(command_line(click.get_current_context()))


def test_the_line_starts_approxrt_even_under_python_dash_m():
    for prog_name in ("approxrt", "python -m approxrt.cli"):
        result = CliRunner().invoke(
            root, ["bench", "adaptive", "s.yaml", "--out", "o"], prog_name=prog_name
        )
        assert result.output.strip() == "approxrt bench adaptive s.yaml --out o"
