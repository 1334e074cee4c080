"""``dreamtext export`` / ``save_pretrained`` / ``export_verifier`` never delete or replace a user's folder.

Before the fix an export swapped the target folder whole: ``d/keep`` vanished, and exporting into a run's
``checkpoints/step_N`` destroyed its optimiser and EMA state.
"""

import json

import pytest
import torch
from _pipeline_fixtures import save_random_pipeline

from dreamtext.cli import main
from dreamtext.config import load_config
from dreamtext.edit.pipeline import DreamTextPipeline
from dreamtext.errors import CheckpointError
from dreamtext.model.checkpoint import export_mode, save_checkpoint


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory):
    return save_random_pipeline(tmp_path_factory.mktemp("pipe") / "pipeline")


def _listing(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_export_refuses_a_folder_holding_a_users_files(pipe_dir, tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "keep").write_text("x")
    assert main(["export", str(pipe_dir), "--out", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "non-empty folder" in err and "--force" in err and "Traceback" not in err
    assert _listing(d) == {"keep": b"x"}


def test_export_force_writes_beside_the_users_files_and_deletes_none(pipe_dir, tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "keep").write_text("x")
    (d / "sub" / "notes").write_text("y")
    assert main(["export", str(pipe_dir), "--out", str(d), "--force"]) == 0
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "keep", "model.safetensors", "state.json", "sub"]
    assert (d / "keep").read_text() == "x" and (d / "sub" / "notes").read_text() == "y"
    assert not list(tmp_path.glob(".*"))  # no temp folder left beside it
    a = DreamTextPipeline.from_pretrained(pipe_dir).model.state_dict()
    b = DreamTextPipeline.from_pretrained(d).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_export_replaces_an_earlier_export_and_fills_an_empty_folder(pipe_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(pipe_dir), "--out", str(empty)]) == 0
    first = json.loads((empty / "state.json").read_text())
    assert first["kind"] == "pipeline"
    assert main(["export", str(pipe_dir), "--out", str(empty), "--half"]) == 0  # an export of ours: replaced
    assert sorted(p.name for p in empty.iterdir()) == ["config.json", "model.safetensors", "state.json"]


def test_export_never_targets_a_training_checkpoint_even_with_force(pipe_dir, tmp_path, capsys):
    cfg = load_config("test")
    step = tmp_path / "run" / "checkpoints" / "step_4"
    save_checkpoint(step, cfg, {"model": {"w": torch.ones(2)}, "optimizer": {"m": torch.zeros(2)}}, {"step": 4})
    before = _listing(step)
    for extra in ([], ["--force"]):
        assert main(["export", str(pipe_dir), "--out", str(step), *extra]) == 2
        err = capsys.readouterr().err
        assert "training checkpoint" in err and "Traceback" not in err
    assert _listing(step) == before
    # A new folder inside a run's checkpoints/ would be taken for a checkpoint by resume: refused too.
    assert main(["export", str(pipe_dir), "--out", str(step.parent / "mine")]) == 2
    assert "checkpoints folder" in capsys.readouterr().err
    assert not (step.parent / "mine").exists()


def test_export_mode_refuses_a_file_and_foreign_kind(tmp_path):
    f = tmp_path / "f.png"
    f.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="is a file"):
        export_mode(f, kind="pipeline")
    assert f.read_bytes() == b"x"
    # An exported verifier is not a pipeline export: replacing it needs --force (and then merges).
    v = tmp_path / "verifier"
    save_checkpoint(v, load_config("test"), {"model": {"w": torch.ones(1)}}, {"kind": "verifier"})
    with pytest.raises(CheckpointError, match="not a pipeline export"):
        export_mode(v, kind="pipeline")
    assert export_mode(v, kind="verifier") is False
    assert export_mode(v, kind="pipeline", force=True) is True
