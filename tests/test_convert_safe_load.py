"""No code from a checkpoint runs: a crafted .ckpt whose unpickling would create a file is refused, unpickled
by nothing, and the file never appears; the error names the global it asked for."""

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _released_fixtures import source_label_encoder, source_unet, source_vae, write_bundle  # noqa: E402

from dreamtext.cli import main  # noqa: E402
from dreamtext.errors import CheckpointError  # noqa: E402
from dreamtext.model.safe_load import load_lightning_state, load_pickled_state  # noqa: E402


class CreatesFile:
    """Unpickling this calls ``open(target, "w")``: the file appears."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


OPEN = f"{open.__module__}.{open.__name__}"  # the global the pickle names (io.open)


def _crafted(path: Path, target: Path, how: str) -> Path:
    payload = {"state_dict": {"model.diffusion_model.x": torch.ones(2)}, "hyper_parameters": CreatesFile(target)}
    if how == "zip":
        torch.save(payload, path)
    elif how == "legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    return path


def test_the_crafted_checkpoint_really_creates_a_file_when_unpickled(tmp_path):
    target = tmp_path / "created"
    _crafted(tmp_path / "evil.ckpt", target, "zip")
    torch.load(tmp_path / "evil.ckpt", weights_only=False)  # what an unrestricted loader would do
    assert target.exists()


@pytest.mark.parametrize("how", ["zip", "legacy", "pickle"])
def test_a_checkpoint_asking_for_a_global_is_refused_and_runs_nothing(tmp_path, how):
    target = tmp_path / "created"
    path = _crafted(tmp_path / "evil.ckpt", target, how)
    with pytest.raises(CheckpointError, match=rf"asks the unpickler for {OPEN}: refused"):
        load_lightning_state(path)
    assert not target.exists()


def test_convert_refuses_a_crafted_bundle_in_one_line(tmp_path, capsys):
    bundle = write_bundle(tmp_path / "bundle", source_unet(), source_label_encoder(), source_vae())
    target = tmp_path / "created"
    _crafted(bundle / "checkpoints" / "pre_trained.ckpt", target, "zip")
    assert main(["convert", str(bundle), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and OPEN in err and "Traceback" not in err
    assert not target.exists() and not (tmp_path / "out").exists()


def test_lightning_entries_and_bare_state_dicts_load(tmp_path):
    torch.save({"state_dict": {"w": torch.arange(3.0)}, "epoch": 2, "global_step": 7, "loops": {"fit": {}},
                "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.5), "dirpath": "x"}},
                "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-4}]}]},
               tmp_path / "a.ckpt")
    assert torch.equal(load_lightning_state(tmp_path / "a.ckpt")["w"], torch.arange(3.0))
    torch.save({"w": torch.ones(1)}, tmp_path / "bare.ckpt")
    assert list(load_lightning_state(tmp_path / "bare.ckpt")) == ["w"]


def test_broken_files_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pickled_state(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    rng = np.random.default_rng(0)
    # Random bytes drive the unpickler into many different errors (IndexError, EOFError, UnpicklingError, ...):
    # a fixed set of 300, plus a pickle that stops mid-way, each ends in one CheckpointError naming the file.
    samples = [rng.integers(0, 256, 64, dtype=np.uint8).tobytes() for _ in range(300)]
    samples.append(pickle.dumps({"w": list(range(100))})[:40])
    for data in samples:
        junk.write_bytes(data)
        with pytest.raises(CheckpointError, match="junk.ckpt"):
            load_pickled_state(junk)
    torch.save({"epoch": 1}, tmp_path / "nothing.ckpt")
    with pytest.raises(CheckpointError, match="holds no state dict"):
        load_lightning_state(tmp_path / "nothing.ckpt")
