"""`OutputDir`: output appears only on success and never clobbers other files."""

from __future__ import annotations

import os

import pytest

from approxrt.sinks import JsonlEventSink, OutputDir, OutputDirStateError, open_sinks


def siblings(path) -> list[str]:
    return sorted(os.listdir(path.parent))


def test_a_successful_run_appears_with_its_files_and_no_staging_left(tmp_path):
    target = tmp_path / "run"
    with OutputDir(target) as out:
        (out / "results.txt").write_text("1,1,0,0,1,1,1,-1,-1,-1\n")
        assert not target.exists()  # nothing visible before commit
    assert sorted(os.listdir(target)) == ["results.txt"]
    assert siblings(target) == ["run"]


def test_a_failed_run_leaves_nothing_behind(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(RuntimeError, match="frame 3 failed"), OutputDir(target) as out:
        sinks = open_sinks(out, ["events", "mot", "coco"])
        (out / "partial.txt").write_text("half")
        raise RuntimeError("frame 3 failed")
    assert all(sink.closed for sink in sinks.sinks)
    assert os.listdir(tmp_path) == []


def test_sinks_registered_with_the_output_are_closed_on_commit(tmp_path):
    out = OutputDir(tmp_path / "run")
    sink = out.add(JsonlEventSink(out / "events.jsonl"))
    final = out.commit()
    assert sink.closed
    assert final == (tmp_path / "run").resolve()
    assert (final / "events.jsonl").exists()


def test_a_non_empty_folder_is_refused_unless_overwrite(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "notes.md").write_text("keep me")
    (target / "results.txt").write_text("old")
    with pytest.raises(ValueError, match=r"exists and is not empty.*overwrite=True"):
        OutputDir(target)
    with OutputDir(target, overwrite=True) as out:
        (out / "results.txt").write_text("new")
    assert (target / "notes.md").read_text() == "keep me"
    assert (target / "results.txt").read_text() == "new"
    assert siblings(target) == ["run"]


def test_an_overwritten_subfolder_is_replaced_whole(tmp_path):
    target = tmp_path / "run"
    (target / "frames").mkdir(parents=True)
    (target / "frames" / "000009.png").write_bytes(b"old")
    with OutputDir(target, overwrite=True) as out:
        (out / "frames").mkdir()
        (out / "frames" / "000001.png").write_bytes(b"new")
    assert os.listdir(target / "frames") == ["000001.png"]


def test_an_empty_existing_folder_is_used_and_a_file_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with OutputDir(tmp_path / "empty") as out:
        (out / "a.txt").write_text("a")
    assert os.listdir(tmp_path / "empty") == ["a.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        OutputDir(tmp_path / "file")


def test_a_failed_overwrite_keeps_the_old_files(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "results.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), OutputDir(target, overwrite=True) as out:
        (out / "results.txt").write_text("new")
        raise KeyboardInterrupt
    assert (target / "results.txt").read_text() == "old"
    assert siblings(target) == ["run"]


def test_a_committed_output_cannot_be_written_again_but_abort_is_harmless(tmp_path):
    out = OutputDir(tmp_path / "run")
    out.commit()
    out.abort()
    assert (tmp_path / "run").is_dir()
    with pytest.raises(OutputDirStateError, match="already committed"):
        out / "late.txt"
    with pytest.raises(OutputDirStateError):
        out.commit()
