"""Checkpoints: save → load gives identical outputs; corrupt files and mismatches raise CheckpointError."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_batch, tiny_test_cfg  # noqa: E402,F401

from dreamtext.errors import CheckpointError  # noqa: E402
from dreamtext.model.checkpoint import latest_checkpoint, load_model, read_tensors, save_checkpoint  # noqa: E402
from dreamtext.model.network import DreamTextModel  # noqa: E402


def _eps(model, cfg, batch):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, *cfg.latent_size, generator=g)
    with torch.no_grad():
        return model(z, torch.tensor([3, 600]), model.make_cond(batch))


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_test_cfg(**{"unet.mask_padding": False, "loss.gamma": 2.5})
    model = DreamTextModel(cfg).eval()
    run = tmp_path_factory.mktemp("run")
    ema = {k: v + 0.01 for k, v in _state(model).items() if k.startswith("unet.conv_out")}
    save_checkpoint(run / "checkpoints" / "step_5", cfg, {"model": _state(model)}, {"step": 5})
    save_checkpoint(run / "checkpoints" / "step_10", cfg, {"model": _state(model), "ema": ema}, {"step": 10})
    return run, model, cfg, ema


def test_round_trip_gives_identical_outputs_and_config(saved):
    run, model, cfg, _ = saved
    batch = make_batch(cfg, ["Hello", "ab"])
    loaded, cfg2 = load_model(run / "checkpoints" / "step_10", use_ema=False)
    assert cfg2 == cfg and cfg2.loss.gamma == 2.5 and not cfg2.unet.mask_padding
    assert torch.equal(_eps(loaded, cfg2, batch), _eps(model, cfg, batch))
    files = sorted(p.name for p in (run / "checkpoints" / "step_10").iterdir())
    assert files == ["config.json", "ema.safetensors", "model.safetensors", "state.json"]
    assert json.loads((run / "checkpoints" / "step_10" / "state.json").read_text()) == {"step": 10}


def test_run_dir_resolves_to_latest_and_ema_overlays(saved):
    run, model, cfg, ema = saved
    assert latest_checkpoint(run).name == "step_10"
    loaded, _ = load_model(run)  # run dir, EMA on by default
    assert torch.equal(loaded.unet.conv_out.weight, ema["unet.conv_out.weight"])
    assert torch.equal(loaded.unet.conv_in.weight, model.unet.conv_in.weight)


def test_resave_is_atomic_replace(tmp_path, saved):
    _, model, cfg, _ = saved
    d = tmp_path / "ck"
    save_checkpoint(d, cfg, {"model": {"a": torch.zeros(2)}}, {"step": 1})
    save_checkpoint(d, cfg, {"model": {"a": torch.ones(2)}}, {"step": 2})
    assert torch.equal(read_tensors(d / "model.safetensors")["a"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temporary leftovers
    # every file gets the umask's mode (safetensors alone would leave its weights 0600)
    umask = os.umask(0)
    os.umask(umask)
    assert {p.name: p.stat().st_mode & 0o777 for p in d.iterdir()} == {
        name: 0o666 & ~umask for name in ("config.json", "model.safetensors", "state.json")}


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_corrupt_weights_raise_naming_the_file(tmp_path, saved):
    run, *_ = saved
    ck = _copy(run / "checkpoints" / "step_10", tmp_path / "ck")
    data = (ck / "model.safetensors").read_bytes()
    (ck / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*corrupt"):
        load_model(ck)


def test_config_weight_mismatch_raises(tmp_path, saved):
    run, *_ = saved
    ck = _copy(run / "checkpoints" / "step_10", tmp_path / "ck")
    cfg = json.loads((ck / "config.json").read_text())
    cfg["text"]["dim"] = 48  # weights were saved for d = 32
    cfg["text"]["heads"] = 2
    (ck / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*wrong shape.*text_encoder"):
        load_model(ck, use_ema=False)


def test_bad_config_and_missing_paths(tmp_path, saved):
    run, *_ = saved
    ck = _copy(run / "checkpoints" / "step_10", tmp_path / "ck")
    (ck / "config.json").write_text('{"unet": {"no_such_key": 1}}')
    with pytest.raises(CheckpointError, match="config.json.*no_such_key"):
        load_model(ck)
    (ck / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(ck)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_model(tmp_path / "empty")
    assert latest_checkpoint(tmp_path / "empty") is None
