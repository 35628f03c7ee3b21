"""``approxrt serve``: the on-device daemon over a streams file."""

from __future__ import annotations

import os
from pathlib import Path

import click

from approxrt.cli.app import main
from approxrt.cli.common import config_from


@main.command()
@click.option(
    "--config",
    "settings_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="streams.yaml: listen address, models, MQTT and the streams.",
)
@click.option("--listen", help="HOST:PORT overriding the file's listen.")
def serve(settings_path, listen):
    """Run the streams of a streams.yaml until SIGTERM or Ctrl-C.

    The control API, /metrics and the status page listen on 127.0.0.1:8080 by
    default; another address needs a bearer token (token_file: in the file, or
    $APPROXRT_API_TOKEN). Stop it with SIGTERM or Ctrl-C: every stream drains
    and flushes its outputs, and the exit code is 0.
    """
    from approxrt.serve.daemon import run_daemon
    from approxrt.serve.spec import load_settings, read_token

    try:
        settings = load_settings(settings_path, listen=listen)
        token = read_token(settings, dict(os.environ))
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    config = config_from(settings.config, models_dir=settings.models)
    try:
        if settings.profile:
            from approxrt.adaptive import settings_from_profile

            config = settings_from_profile(config, Path(settings.profile))
        run_daemon(settings, config, token)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
