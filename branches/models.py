"""Model files by name: where they come from, how to check them, where they live.

`resolve_model("yolox_nano")` returns the path of a verified copy of the file,
looking in this order:

1. the ``models_dir`` argument;
2. ``$APPROXRT_MODELS`` (one folder, or several joined by ``os.pathsep``);
3. the cache: the ``cache_dir`` argument, else ``$APPROXRT_CACHE``, else the
   user cache folder (``~/.cache/approxrt`` on Linux, honouring
   ``$XDG_CACHE_HOME``);
4. for torchvision weights, torch.hub's ``<torch.hub.get_dir()>/checkpoints``;

and, when nothing is found and ``download=True``, downloads the spec's URL
(overridable with ``url=`` or ``$APPROXRT_MODEL_URL_<NAME>``) into the cache.
Every file found or downloaded is checked against the registry's SHA-256; a
download is written to a temporary file beside the target and moved into place
only once it has passed, so a failed download leaves nothing in the cache.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pooch

_HEX = re.compile(r"^[0-9a-f]{8,64}$")
_ENV_MODELS = "APPROXRT_MODELS"
_ENV_CACHE = "APPROXRT_CACHE"
_ENV_URL_PREFIX = "APPROXRT_MODEL_URL_"


class ModelNotFoundError(FileNotFoundError):
    """No copy of a model file was found and downloading was not allowed."""


class ModelChecksumError(ValueError):
    """A model file's size or SHA-256 is not the registry's."""


class ModelDownloadError(OSError):
    """Downloading a model file failed (network, HTTP status, connection cut)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model file the runtime knows how to fetch and check.

    Attributes:
        name: registry key, the detector family name (``yolox_nano``).
        filename: file name on disk, in every folder searched.
        url: official upstream download URL.
        sha256: lower-case hex SHA-256 of the file: all 64 digits, or for
            torchvision weights the prefix torchvision puts in the file name
            (a file passes when its digest starts with it, as torch.hub checks).
        licence: upstream licence and provenance, for the record.
        size_bytes: exact file size when known; checked before the hash so a
            truncated file is named as such.
        torch_hub: also look in torch.hub's checkpoint folder.
    """

    name: str
    filename: str
    url: str
    sha256: str
    licence: str
    size_bytes: int | None = None
    torch_hub: bool = False

    def __post_init__(self) -> None:
        if not _HEX.match(self.sha256):
            raise ValueError(
                f"ModelSpec.sha256 of {self.name!r}: expected 8 to 64 lower-case hex "
                f"digits, got {self.sha256!r}"
            )
        if Path(self.filename).name != self.filename or not self.filename:
            raise ValueError(
                f"ModelSpec.filename of {self.name!r}: expected a bare file name, "
                f"got {self.filename!r}"
            )

    @property
    def hash_is_prefix(self) -> bool:
        return len(self.sha256) < 64


# Torchvision's entries mirror torchvision.models.detection's COCO_V1 weight enums
# (a test checks they still agree); torchvision names each file
# <stem>-<first 8 hex digits of its sha256>.pth.
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="yolox_nano",
            filename="yolox_nano.onnx",
            url="https://github.com/Megvii-BaseDetection/YOLOX/releases/download/"
            "0.1.1rc0/yolox_nano.onnx",
            sha256="e8af074932d4ed7e232278e3055cefcdea3edf178874a3694ae292649fb464dd",
            licence="Apache-2.0, Megvii YOLOX official COCO export",
            size_bytes=3_678_356,
        ),
        ModelSpec(
            name="fastestdet",
            filename="fastestdet.onnx",
            # Upstream spells it FastestDet.onnx; we store it lower-case.
            url="https://raw.githubusercontent.com/dog-qiuqiu/FastestDet/main/"
            "example/onnx-runtime/FastestDet.onnx",
            sha256="31cb14c017fce347cb4c846ec62fdf00d76bb3beecdf4be21e7116ac67feb880",
            licence="BSD-3-Clause, dog-qiuqiu/FastestDet official COCO export",
            size_bytes=998_169,
        ),
        ModelSpec(
            name="nanodet_m",
            filename="nanodet_m.onnx",
            # Release asset of RangiLyu/nanodet; that this URL serves exactly this
            # file could not be verified from here (no internet).
            url="https://github.com/RangiLyu/nanodet/releases/download/v0.0.1/"
            "nanodet_m.onnx",
            sha256="4b82da9944b88577175ee23a459dce2e26e6e4be573def65b1055dc2d9720186",
            licence="Apache-2.0, RangiLyu/nanodet NanoDet-m COCO export",
            size_bytes=3_800_954,
        ),
        ModelSpec(
            name="frcnn_mbv3",
            filename="fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
            url="https://download.pytorch.org/models/"
            "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
            sha256="fb6a3cc7",
            licence="BSD-3-Clause (torchvision), FasterRCNN_MobileNet_V3_Large_FPN"
            "_Weights.COCO_V1, trained on COCO 2017",
            torch_hub=True,
        ),
        ModelSpec(
            name="frcnn_r50",
            filename="fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
            url="https://download.pytorch.org/models/"
            "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
            sha256="258fb6c6",
            licence="BSD-3-Clause (torchvision), FasterRCNN_ResNet50_FPN_Weights"
            ".COCO_V1, trained on COCO 2017",
            torch_hub=True,
        ),
    )
}


def register_model(spec: ModelSpec, *, replace: bool = False) -> None:
    """Add ``spec`` to the registry; an existing name needs ``replace=True``."""
    if spec.name in MODELS and not replace:
        raise ValueError(
            f"register_model: a model named {spec.name!r} is already registered; "
            "pass replace=True to override it"
        )
    MODELS[spec.name] = spec


def get_spec(name: str) -> ModelSpec:
    """The spec registered as ``name`` (or with file name ``name``)."""
    if name in MODELS:
        return MODELS[name]
    for spec in MODELS.values():
        if spec.filename == name:
            return spec
    raise ValueError(
        f"unknown model {name!r}; registered models: {', '.join(sorted(MODELS))}"
    )


def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$APPROXRT_CACHE``, else the user cache folder."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(_ENV_CACHE):
        return Path(os.environ[_ENV_CACHE]).expanduser()
    # platformdirs (through pooch) gives ~/.cache/approxrt or $XDG_CACHE_HOME/approxrt.
    return Path(pooch.os_cache("approxrt"))


def url_env_var(name: str) -> str:
    """The environment variable that overrides model ``name``'s download URL."""
    return _ENV_URL_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())


def verify_model_file(spec: ModelSpec, path: str | Path) -> None:
    """Raise `ModelChecksumError` unless ``path`` has ``spec``'s size and hash."""
    _check(spec, Path(path), f"file {path}", spec.url)


def _check(spec: ModelSpec, path: Path, what: str, url: str) -> None:
    size = path.stat().st_size
    if spec.size_bytes is not None and size != spec.size_bytes:
        raise ModelChecksumError(
            f"model {spec.name!r}: {what} is {size} bytes, expected "
            f"{spec.size_bytes} (truncated or a different file); source URL: {url}"
        )
    digest = pooch.file_hash(str(path), alg="sha256")
    if not digest.startswith(spec.sha256):
        expected = spec.sha256
        if spec.hash_is_prefix:
            expected = f"a digest starting {spec.sha256}"
        raise ModelChecksumError(
            f"model {spec.name!r}: {what} has sha256 {digest}, expected {expected} "
            f"(corrupt, truncated or a different file); source URL: {url}"
        )


def resolve_model(
    name: str,
    models_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    progress: bool = True,
    url: str | None = None,
) -> Path:
    """The path of a verified copy of model ``name``, downloading it if allowed.

    Args:
        name: registry name (``yolox_nano``) or file name (``yolox_nano.onnx``).
        models_dir: folder searched first.
        cache_dir: download cache; default ``$APPROXRT_CACHE`` or the user cache.
        download: fetch the file when no copy is found.
        progress: show a progress bar while downloading.
        url: download from here instead of the spec's URL (a mirror); default
            ``$APPROXRT_MODEL_URL_<NAME>`` when set.

    Raises:
        ModelNotFoundError: no copy found and ``download`` is False.
        ModelChecksumError: a copy found, or the download, fails verification.
        ModelDownloadError: the download itself failed.
    """
    spec = get_spec(name)
    cache = default_cache_dir(cache_dir)
    places = _search_places(spec, models_dir, cache)
    for _, folder in places:
        if folder is not None and (folder / spec.filename).is_file():
            found = folder / spec.filename
            verify_model_file(spec, found)
            return found
    source = url or os.environ.get(url_env_var(spec.name)) or spec.url
    if not download:
        raise ModelNotFoundError(_not_found_message(spec, places, cache, source))
    return _download(spec, source, cache, progress)


def _search_places(
    spec: ModelSpec, models_dir: str | Path | None, cache: Path
) -> list[tuple[str, Path | None]]:
    """(label, folder) in search order; folder None when the place is unset."""
    places: list[tuple[str, Path | None]] = [
        ("models_dir argument", Path(models_dir).expanduser() if models_dir else None)
    ]
    env_dirs = [d for d in os.environ.get(_ENV_MODELS, "").split(os.pathsep) if d]
    places += [(f"${_ENV_MODELS}", Path(d).expanduser()) for d in env_dirs] or [
        (f"${_ENV_MODELS}", None)
    ]
    places.append(("cache", cache))
    if spec.torch_hub:
        import torch.hub  # only torchvision weights need torch

        hub = Path(torch.hub.get_dir()) / "checkpoints"
        places.append(("torch.hub checkpoints", hub))
    return places


def _not_found_message(
    spec: ModelSpec, places: list[tuple[str, Path | None]], cache: Path, url: str
) -> str:
    looked = "; ".join(
        f"{label}: {folder / spec.filename if folder else '(not set)'}"
        for label, folder in places
    )
    return (
        f"model {spec.name!r} ({spec.filename}) not found and download=False. "
        f"Looked in: {looked}. To fix: put {spec.filename} in a folder and pass it as "
        f"models_dir or set ${_ENV_MODELS} to it; or allow the "
        f"download (download=True) of {url} into {cache} (${_ENV_CACHE} moves the "
        f"cache; ${url_env_var(spec.name)} points at a mirror)."
    )


def _download(spec: ModelSpec, url: str, cache: Path, progress: bool) -> Path:
    """Fetch ``url`` beside its final place, verify, then rename it into place."""
    import requests  # pooch's HTTP client; imported here to keep import cheap

    cache.mkdir(parents=True, exist_ok=True)
    target = cache / spec.filename
    handle, partial = tempfile.mkstemp(
        prefix=f".{spec.filename}.", suffix=".part", dir=cache
    )
    os.close(handle)
    try:
        try:
            pooch.HTTPDownloader(progressbar=progress)(url, partial, None)
        except requests.RequestException as error:
            raise ModelDownloadError(
                f"model {spec.name!r}: download from {url} failed: {error}. Nothing "
                f"was written to {cache}; check the network, point "
                f"${url_env_var(spec.name)} (or url=) at a mirror, or, offline, put "
                f"{spec.filename} in a folder given as --models (or ${_ENV_MODELS})"
            ) from error
        _check(spec, Path(partial), f"the download from {url} (discarded)", url)
        os.replace(partial, target)  # atomic on one file system
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return target
