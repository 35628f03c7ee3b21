"""Model registry: lookup order, verification and downloads from a real local server."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from approxrt.branches import models
from approxrt.branches.models import (
    MODELS,
    ModelChecksumError,
    ModelDownloadError,
    ModelNotFoundError,
    ModelSpec,
    resolve_model,
)

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class _Server:
    """Serves PAYLOAD in good, cut-short, shorter and wrong variants; counts GETs."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                routes = {
                    "/good.bin": (PAYLOAD, len(PAYLOAD)),
                    # Announces the full size but the connection closes halfway.
                    "/cut.bin": (PAYLOAD[: len(PAYLOAD) // 2], len(PAYLOAD)),
                    "/short.bin": (PAYLOAD[:-100], len(PAYLOAD) - 100),
                    "/wrong.bin": (PAYLOAD[::-1], len(PAYLOAD)),
                }
                if self.path not in routes:
                    self.send_error(404)
                    return
                body, length = routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    running = _Server()
    yield running
    running.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in ("APPROXRT_MODELS", "APPROXRT_CACHE", "APPROXRT_MODEL_URL_TINY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def register(monkeypatch, url: str, **overrides) -> ModelSpec:
    fields = dict(
        name="tiny",
        filename="tiny.bin",
        url=url,
        sha256=PAYLOAD_SHA256,
        licence="test data",
        size_bytes=len(PAYLOAD),
    )
    fields.update(overrides)
    spec = ModelSpec(**fields)
    monkeypatch.setitem(MODELS, spec.name, spec)
    return spec


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_good_download_is_verified_cached_and_not_fetched_again(
    server, monkeypatch, tmp_path
):
    register(monkeypatch, server.base + "/good.bin")
    cache = tmp_path / "cache"
    path = resolve_model("tiny", cache_dir=cache, progress=False)
    assert path == cache / "tiny.bin"
    assert path.read_bytes() == PAYLOAD
    assert files_in(cache) == ["tiny.bin"]
    again = resolve_model("tiny.bin", cache_dir=cache, progress=False)
    assert again == path
    assert server.requests == ["/good.bin"]


@pytest.mark.parametrize(
    ("route", "overrides"),
    [
        ("/wrong.bin", {}),
        ("/short.bin", {}),
        ("/short.bin", {"size_bytes": None}),  # only the hash can catch it
        ("/wrong.bin", {"sha256": PAYLOAD_SHA256[:8], "size_bytes": None}),
    ],
)
def test_a_bad_download_is_refused_with_the_model_url_and_hashes_and_leaves_no_file(
    server, monkeypatch, tmp_path, route, overrides
):
    spec = register(monkeypatch, server.base + route, **overrides)
    cache = tmp_path / "cache"
    with pytest.raises(ModelChecksumError) as error:
        resolve_model("tiny", cache_dir=cache, progress=False)
    message = str(error.value)
    assert "'tiny'" in message and server.base + route in message
    if spec.size_bytes is not None and route == "/short.bin":
        assert f"{len(PAYLOAD) - 100} bytes, expected {len(PAYLOAD)}" in message
    else:
        served = PAYLOAD[::-1] if route == "/wrong.bin" else PAYLOAD[:-100]
        assert hashlib.sha256(served).hexdigest() in message
        assert spec.sha256 in message
    assert files_in(cache) == []


def test_a_connection_cut_before_content_length_is_refused_and_leaves_no_file(
    server, monkeypatch, tmp_path
):
    register(monkeypatch, server.base + "/cut.bin", size_bytes=None)
    cache = tmp_path / "cache"
    with pytest.raises((ModelDownloadError, ModelChecksumError)) as error:
        resolve_model("tiny", cache_dir=cache, progress=False)
    assert "'tiny'" in str(error.value) and "/cut.bin" in str(error.value)
    assert files_in(cache) == []


def test_an_http_error_is_a_download_error_naming_the_url(
    server, monkeypatch, tmp_path
):
    register(monkeypatch, server.base + "/missing.bin")
    cache = tmp_path / "cache"
    with pytest.raises(ModelDownloadError, match=r"404.*/missing\.bin"):
        resolve_model("tiny", cache_dir=cache, progress=False)
    assert files_in(cache) == []


def test_url_override_by_environment_and_argument_points_at_a_mirror(
    server, monkeypatch, tmp_path
):
    register(monkeypatch, server.base + "/missing.bin")
    monkeypatch.setenv(models.url_env_var("tiny"), server.base + "/good.bin")
    assert models.url_env_var("tiny") == "APPROXRT_MODEL_URL_TINY"
    first = resolve_model("tiny", cache_dir=tmp_path / "a", progress=False)
    assert first.read_bytes() == PAYLOAD
    monkeypatch.delenv("APPROXRT_MODEL_URL_TINY")
    second = resolve_model(
        "tiny", cache_dir=tmp_path / "b", progress=False, url=server.base + "/good.bin"
    )
    assert second.read_bytes() == PAYLOAD
    assert server.requests == ["/good.bin", "/good.bin"]


def test_models_dir_then_environment_then_cache_take_precedence(
    server, monkeypatch, tmp_path
):
    register(monkeypatch, server.base + "/good.bin")
    folders = {name: tmp_path / name for name in ("mine", "env_a", "env_b", "cache")}
    for folder in folders.values():
        folder.mkdir()
        (folder / "tiny.bin").write_bytes(PAYLOAD)
    joined = f"{folders['env_a']}{models.os.pathsep}{folders['env_b']}"
    monkeypatch.setenv("APPROXRT_MODELS", joined)
    monkeypatch.setenv("APPROXRT_CACHE", str(folders["cache"]))
    mine = resolve_model("tiny", models_dir=folders["mine"])
    assert mine == folders["mine"] / "tiny.bin"
    assert resolve_model("tiny") == folders["env_a"] / "tiny.bin"
    (folders["env_a"] / "tiny.bin").unlink()
    assert resolve_model("tiny") == folders["env_b"] / "tiny.bin"
    monkeypatch.delenv("APPROXRT_MODELS")
    assert resolve_model("tiny") == folders["cache"] / "tiny.bin"
    assert server.requests == []


def test_a_corrupt_local_file_is_an_error_naming_it(monkeypatch, tmp_path):
    register(monkeypatch, "http://127.0.0.1:9/unused")
    (tmp_path / "tiny.bin").write_bytes(PAYLOAD[:-1] + b"x")
    with pytest.raises(ModelChecksumError, match=r"tiny\.bin.*sha256"):
        resolve_model("tiny", models_dir=tmp_path, download=False)


def test_not_found_without_download_names_every_place_and_the_fixes(
    monkeypatch, tmp_path
):
    register(monkeypatch, "http://127.0.0.1:9/tiny.bin", torch_hub=True)
    monkeypatch.setenv("APPROXRT_MODELS", str(tmp_path / "env"))
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model(
            "tiny",
            models_dir=tmp_path / "mine",
            cache_dir=tmp_path / "cache",
            download=False,
        )
    message = str(error.value)
    for place in ("mine", "env", "cache", "torch_home"):
        assert str(tmp_path / place) in message
    for fix in (
        "models_dir",
        "APPROXRT_MODELS",
        "download=True",
        "APPROXRT_MODEL_URL_TINY",
        "http://127.0.0.1:9/tiny.bin",
    ):
        assert fix in message


def test_torchvision_weights_are_found_in_torch_hub_checkpoints_by_hash_prefix(
    monkeypatch, tmp_path
):
    register(
        monkeypatch,
        "http://127.0.0.1:9/unused",
        sha256=PAYLOAD_SHA256[:8],
        size_bytes=None,
        torch_hub=True,
    )
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "tiny.bin").write_bytes(PAYLOAD)
    found = resolve_model("tiny", cache_dir=tmp_path / "cache", download=False)
    assert found == hub / "tiny.bin"


def test_the_default_cache_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.default_cache_dir() == tmp_path / "xdg" / "approxrt"
    monkeypatch.setenv("APPROXRT_CACHE", str(tmp_path / "mine"))
    assert models.default_cache_dir() == tmp_path / "mine"


def test_unknown_names_and_bad_specs_are_rejected_with_the_valid_choices():
    with pytest.raises(ValueError, match=r"registered models: .*yolox_nano"):
        models.get_spec("yolox_tiny")
    with pytest.raises(ValueError, match="sha256"):
        ModelSpec("x", "x.bin", "http://x", "not-hex", "none")
    with pytest.raises(ValueError, match="already registered"):
        models.register_model(MODELS["yolox_nano"])


def test_the_real_shared_models_resolve_from_models_dir_and_match_their_hashes(
    models_dir,
):
    for name in ("yolox_nano", "fastestdet", "nanodet_m"):
        path = resolve_model(name, models_dir=models_dir, download=False)
        assert path == models_dir / MODELS[name].filename
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == MODELS[name].sha256
        assert path.stat().st_size == MODELS[name].size_bytes


def test_torchvision_entries_agree_with_torchvision_weight_enums():
    from torchvision.models.detection import (
        FasterRCNN_MobileNet_V3_Large_FPN_Weights,
        FasterRCNN_ResNet50_FPN_Weights,
    )

    for name, weights in (
        ("frcnn_mbv3", FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1),
        ("frcnn_r50", FasterRCNN_ResNet50_FPN_Weights.COCO_V1),
    ):
        spec = MODELS[name]
        assert spec.url == weights.url
        assert spec.filename == weights.url.rsplit("/", 1)[1]
        assert spec.filename.rsplit("-", 1)[1] == f"{spec.sha256}.pth"
