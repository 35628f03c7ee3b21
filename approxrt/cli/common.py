"""What every command shares: config and branch parsing, rerun lines."""

from __future__ import annotations

import shlex

import click
from click.core import ParameterSource

from approxrt.branch import Branch
from approxrt.config import Config, load_config


def config_from(config_path: str | None, **overrides) -> Config:
    try:
        return load_config(config_path, **overrides)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def parse_branch(name: str) -> Branch:
    from approxrt.branches.space import validate_branch

    try:
        return validate_branch(Branch.parse(name))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--branch") from None


def parse_switches(values: tuple[str, ...]) -> dict[int, Branch]:
    switches = {}
    for value in values:
        index, sep, name = value.partition("=")
        if not sep or not index.strip().isdigit():
            raise click.BadParameter(
                f"{value!r}: expected FRAME=BRANCH, e.g. "
                "400=yolox_nano/s320/si4/kcf/ds2",
                param_hint="--switch",
            )
        switches[int(index)] = parse_branch(name)
    return switches


def parse_ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def command_line(ctx: click.Context) -> str:
    """The options given to this command, as a line that reruns it (for reports)."""
    parts = ["approxrt", *_subcommands(ctx)]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        values = list(value) if isinstance(value, tuple) else [value]
        if isinstance(param, click.Argument):
            parts += [shlex.quote(str(v)) for v in values]
        elif getattr(param, "is_flag", False):
            flag = param.opts[0] if value else param.secondary_opts[0]
            parts.append(flag)
        else:
            for v in values:
                parts += [param.opts[0], shlex.quote(str(v))]
    return " ".join(parts)


def _subcommands(ctx: click.Context) -> list[str]:
    """The subcommand names below the root, e.g. ``["bench", "adaptive"]``: the
    root's own name is "python -m approxrt.cli" when run that way."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return names[::-1]
