"""streams.yaml and the API's stream body: every mistake named, secrets hidden."""

import pytest
import yaml
from click.testing import CliRunner

from approxrt.cli import main
from approxrt.serve.spec import ServeSettings, load_settings, read_token, redact_url

BRANCH = "yolox_nano/s320/si4/medianflow/ds2"


def _serve(tmp_path, text, env=None):
    path = tmp_path / "streams.yaml"
    path.write_text(text)
    return CliRunner().invoke(main, ["serve", "--config", str(path)], env=env)


def _yaml(**values):
    return yaml.safe_dump(values)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("streams: [id: a\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        (_yaml(lisen="127.0.0.1:1"), "lisen"),
        (_yaml(listen="nowhere"), "expected HOST:PORT"),
        (
            _yaml(streams=[{"id": "a", "source": "x.mp4", "branch": BRANCH}] * 2),
            "repeated: ['a']",
        ),
        (
            _yaml(streams=[{"id": "a", "source": "x.mp4", "branch": "yolo/s1"}]),
            "streams.0",
        ),
        (_yaml(streams=[{"id": "a b", "source": "x.mp4", "branch": BRANCH}]), "id"),
        (_yaml(streams=[{"id": "a", "source": "x.mp4"}]), "give a branch"),
        (_yaml(listen="0.0.0.0:8080"), "needs a bearer token"),
        (
            _yaml(streams=[{"id": "a", "source": "/no/such.mp4", "branch": BRANCH}]),
            "/no/such.mp4",
        ),
    ],
)
def test_a_bad_streams_file_is_refused_with_its_reason(tmp_path, text, words):
    result = _serve(tmp_path, text, env={"APPROXRT_API_TOKEN": ""})
    assert result.exit_code != 0
    assert words in result.output, result.output


def test_credentials_are_hidden_in_errors_and_public_views(tmp_path):
    source = "rtsp://admin:hunter2@10.0.0.7:554/live"
    assert redact_url(source) == "rtsp://***@10.0.0.7:554/live"
    assert redact_url("/videos/a@b.mp4") == "/videos/a@b.mp4"
    settings = ServeSettings(streams=[{"id": "g", "source": source, "branch": BRANCH}])
    assert "hunter2" not in str(settings.streams[0].public())
    bad = _yaml(streams=[{"id": "g", "source": source, "branch": BRANCH, "x": 1}])
    result = _serve(tmp_path, bad)
    assert result.exit_code != 0 and "hunter2" not in result.output


def test_the_token_comes_from_a_file_or_the_environment(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    wide = ServeSettings(listen="0.0.0.0:8080", token_file=str(token_file))
    assert read_token(wide, {}) == "from-file"
    env_only = ServeSettings(listen="0.0.0.0:8080")
    assert read_token(env_only, {"APPROXRT_API_TOKEN": "from-env"}) == "from-env"
    assert read_token(ServeSettings(), {}) is None
    token_file.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        read_token(wide, {})


def test_load_settings_reads_a_valid_file(tmp_path):
    path = tmp_path / "streams.yaml"
    path.write_text(
        _yaml(
            listen="127.0.0.1:9000",
            streams=[{"id": "g", "source": "0", "branch": BRANCH, "classes": ["car"]}],
        )
    )
    settings = load_settings(path)
    assert settings.host_port() == ("127.0.0.1", 9000)
    assert settings.streams[0].classes == ["car"]
