"""What `approxrt serve` reads: the daemon's settings and one entry per stream.

The same `StreamSpec` is a stream entry of ``streams.yaml`` and the body of
``POST /streams``, so a stream added over the API is written exactly as one in
the file::

    listen: 127.0.0.1:8080
    models: /opt/approxrt/models
    mqtt: {host: 127.0.0.1, port: 1883}
    streams:
      - id: gate
        source: rtsp://user:pass@10.0.0.7/live
        branch: yolox_nano/s320/si4/medianflow/ds1
        classes: [person]
        out: runs/gate

Camera credentials inside URLs are secrets: `redact_url` hides them wherever a
source is shown (logs, events, metrics, API responses).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from approxrt.branch import Branch
from approxrt.classes import class_ids_from_names
from approxrt.config import read_yaml_mapping

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
TOKEN_ENV = "APPROXRT_API_TOKEN"  # noqa: S105 - the variable's name, not a token
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)[^/@\s]*@")

StreamId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


def redact_url(text: str) -> str:
    """``rtsp://user:pass@host/x`` -> ``rtsp://***@host/x``; other text unchanged."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


class StreamSpec(BaseModel):
    """One stream: where frames come from, how they are processed, where to.

    ``branch`` runs one fixed branch; ``sla_ms`` alone asks for an adaptive
    stream (the scheduler's), ``sla_ms`` with ``branch`` records the SLA against
    the fixed branch.
    """

    model_config = ConfigDict(extra="forbid")

    id: StreamId
    source: str = Field(min_length=1, max_length=2048)
    branch: str | None = Field(default=None, max_length=200)
    sla_ms: float | None = Field(default=None, gt=0, le=600_000)
    classes: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=80
    )
    out: str | None = Field(default=None, max_length=4096)
    loop: bool = False
    mqtt: bool = True

    @model_validator(mode="after")
    def _check(self) -> StreamSpec:
        if self.branch is None and self.sla_ms is None:
            raise ValueError("give a branch (fixed) or sla_ms (adaptive)")
        if self.branch is not None:
            from approxrt.branches.space import validate_branch

            validate_branch(Branch.parse(self.branch))
        if self.classes:
            class_ids_from_names(self.classes)
        return self

    @property
    def fixed_branch(self) -> Branch | None:
        return None if self.branch is None else Branch.parse(self.branch)

    def public(self) -> dict[str, Any]:
        """The entry as shown to anyone: credentials in the source hidden."""
        return {**self.model_dump(), "source": redact_url(self.source)}


class MqttSpec(BaseModel):
    """The broker every stream with ``mqtt: true`` publishes its detections to."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = "approxrt"
    qos: int = Field(default=1, ge=1, le=2)
    spool_dir: str = "approxrt-spool"


class ServeSettings(BaseModel):
    """The daemon's settings (the whole ``streams.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    listen: str = "127.0.0.1:8080"  # HOST:PORT of the API, /metrics, status page
    models: str | None = None  # the model folder, as `run --models`
    config: str | None = None  # an approxrt config YAML, as `run --config`
    profile: str | None = (
        None  # adaptive streams' profile, as `run --profile`; else calibration
    )
    token_file: str | None = None  # the API's bearer token (else $APPROXRT_API_TOKEN)
    # Plan the adaptive streams together (scheduler/device_share.py). Off by
    # default: on a 2-core CPU it did no better than streams that learn their
    # siblings' load from latency (docs/benchmarks/daemon_joint.md).
    plan_streams_together: bool = False
    streams: list[StreamSpec] = Field(default_factory=list)
    mqtt: MqttSpec | None = None  # no broker: no MQTT output
    # Frames waiting for inference per stream; older ones are dropped (counted).
    queue_frames: int = Field(default=2, ge=1, le=100)
    # Backoff before reopening a dropped camera: uniform in [0, min(max, initial*2^n)].
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    # Each stream's events.jsonl rotates at this size, keeping this many old files.
    events_max_bytes: int = Field(default=50_000_000, ge=1000)
    events_backups: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _check(self) -> ServeSettings:
        ids = [s.id for s in self.streams]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"stream ids must be unique; repeated: {repeated}")
        self.host_port()
        return self

    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen {self.listen!r}: expected HOST:PORT")
        return host.strip("[]"), int(port)

    def is_local(self) -> bool:
        return self.host_port()[0] in LOCAL_HOSTS


def load_settings(path: str | Path, **overrides: Any) -> ServeSettings:
    """Read ``streams.yaml``; every problem is named with where it is.

    Raises:
        ValueError: unreadable file, bad YAML or a bad key or value.
    """
    values = read_yaml_mapping(Path(path), "streams file")
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServeSettings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}"
            for e in error.errors()
        )
        raise ValueError(f"{path}: {redact_url(problems)}") from None


def read_token(settings: ServeSettings, environ: dict[str, str]) -> str | None:
    """The API's bearer token: from ``token_file``, else the environment.

    Raises:
        ValueError: listening beyond this machine without a token, or an
            unreadable or empty token file.
    """
    token = environ.get(TOKEN_ENV, "").strip() or None
    if settings.token_file:
        try:
            token = Path(settings.token_file).read_text().strip()
        except OSError as error:
            raise ValueError(
                f"token_file {settings.token_file}: cannot read it ({error.strerror})"
            ) from None
        if not token:
            raise ValueError(f"token_file {settings.token_file}: is empty")
    if token is None and not settings.is_local():
        raise ValueError(
            f"listen {settings.listen}: an address other than 127.0.0.1 needs a "
            f"bearer token (token_file: in the config, or ${TOKEN_ENV})"
        )
    return token
