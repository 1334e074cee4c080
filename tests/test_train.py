"""The diffusion trainer on the test preset: logs, checkpoints, pruning, sample grids, guards, stops."""

import json
import math
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

import dreamtext.train.losses
from dreamtext.cli import main
from dreamtext.config import load_config
from dreamtext.errors import CheckpointError
from dreamtext.model.checkpoint import latest_checkpoint, load_model
from dreamtext.train.run_setup import loss_values
from dreamtext.train.trainer import Trainer, train
from dreamtext.train.utils import NonFiniteLossError, lr_at, read_metrics

BASE = ["train.batch_size=2", "train.log_every=1", "train.sample_every=0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One 4-step run through the CLI: checkpoints every 2 steps (keep 1), a sample grid and a probe at step 4."""
    out = tmp_path_factory.mktemp("train") / "run"
    rc = main(["train", "--preset", "test", f"train.out_dir={out}", *BASE, "train.max_steps=4",
               "train.ckpt_every=2", "train.keep_ckpts=1", "train.sample_every=4", "train.warmup_steps=2",
               "loss.k_gt=2", "train.probe_every=4", "train.probe_size=2", "train.probe_steps=2", "--no-progress"])
    assert rc == 0
    return out


def test_every_loss_term_miou_and_lr_are_logged(run):
    cfg = load_config("test")
    recs = [r for r in read_metrics(run) if "loss/total" in r]  # the training lines (not the probe's)
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    for r in recs:
        for key in ("loss/total", "loss/mask", "loss/attn", "loss/align", "loss/id", "miou", "lr", "samples_per_s"):
            assert key in r and np.isfinite(r[key]), key
        # L = L_mask + α·L_attn + β·(L_align + L_id) (DESIGN §4), term by term as logged
        expected = r["loss/mask"] + 0.01 * r["loss/attn"] + 0.001 * (r["loss/align"] + r["loss/id"])
        assert r["loss/total"] == pytest.approx(expected, rel=1e-5)
        assert r["lr"] == pytest.approx(lr_at(r["step"] - 1, cfg.train.lr, 2, 4, "cosine"))
        assert 0.0 <= r["miou"] <= 1.0
    # balanced supervision with k_gt=2: ground-truth masks for steps 0-1, predicted ones after
    assert [r["gt_frac"] for r in recs] == [1.0, 1.0, 0.0, 0.0]


def test_checkpoint_holds_weights_ema_optimizer_rng_and_data_position(run):
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step_00000004"]  # step 2 was pruned (keep_ckpts=1)
    ckpt = latest_checkpoint(run)
    state = json.loads((ckpt / "state.json").read_text())
    assert state["step"] == 4 and state["ema_updates"] == 4
    assert state["data"]["next_micro_batch"] == 4 and state["data"]["samples_seen"] == 8
    assert set(state["rng"]) >= {"python", "numpy", "torch"}
    assert json.loads((ckpt / "config.json").read_text())["train"]["max_steps"] == 4
    # the checkpoint loads as a model (EMA weights overlaid) through the MODEL developer's loader
    from safetensors.torch import load_file

    ema = load_file(str(ckpt / "ema.safetensors"))
    raw = load_file(str(ckpt / "model.safetensors"))
    model, cfg = load_model(run)
    name = next(k for k in ema if k.startswith("unet.") and k.endswith("weight"))
    assert torch.equal(model.state_dict()[name], ema[name])
    assert not torch.equal(ema[name], raw[name])  # the average lags the raw weights
    opt = load_file(str(ckpt / "optimizer.safetensors"))
    assert any(k.endswith("exp_avg_sq") for k in opt)


def test_sample_grid_is_written(run):
    png = run / "samples" / "step_00000004.png"
    img = np.asarray(Image.open(png))
    assert img.ndim == 3 and img.shape[2] == 3 and img.shape[0] > 2 * 48 and img.shape[1] > 4 * 64
    assert img.std() > 10  # not a blank canvas


def test_benchmark_probe_logs_seq_acc_and_mask_miou_and_writes_reports(run):
    probes = [r for r in read_metrics(run) if any(k.startswith("probe/") for k in r)]
    assert [r["step"] for r in probes] == [4]
    rec = probes[0]
    for key in ("probe/recon_seq_acc", "probe/edit_seq_acc", "probe/recon_ned", "probe/edit_ned", "probe/ocr_ceiling",
                "probe/mask_miou", "probe/mask_miou_slices"):
        assert 0.0 <= rec[key] <= 1.0, key
    for task in ("recon", "edit"):
        results = json.loads((run / "probes" / "step_00000004" / task / "results.json").read_text())
        assert results["task"] == task and results["n_samples"] == 2 and results["data"] == "bench"
        assert results["sampling"]["steps"] == 2
        assert results["metrics"]["seq_acc_ci"] == rec[f"probe/{task}_seq_acc"]
        assert results["metrics"]["ned"] == rec[f"probe/{task}_ned"]
        assert (run / "probes" / "step_00000004" / task / "report.md").is_file()


def test_probe_afterwards_reproduces_the_trainers_probe(run, tmp_path, capsys):
    import shutil

    # The step-4 checkpoint already has the trainer's probe: a second point at one step is refused.
    assert main(["probe", str(run), "--no-progress"]) == 2
    assert "already has probe values" in capsys.readouterr().err
    trainer_probe = next(r for r in read_metrics(run) if "probe/recon_seq_acc" in r)
    # The same run as if trained with train.probe_every=0: no probe lines, no reports.
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("probes", "tensorboard"))
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    (copy / "metrics.jsonl").write_text("".join(ln + "\n" for ln in lines if "probe/" not in ln))
    assert main(["probe", str(copy), "--no-progress"]) == 0
    assert "probe of step 4" in capsys.readouterr().out
    records = read_metrics(copy)
    assert len(records) == len(lines)  # one line appended, nothing else touched
    added = records[-1]
    assert set(added) == set(trainer_probe)
    for key in trainer_probe:  # the EMA weights of the checkpoint, the run's probe size and steps, the same seeds
        assert added[key] == pytest.approx(trainer_probe[key], abs=1e-9), key
    results = json.loads((copy / "probes" / "step_00000004" / "edit" / "results.json").read_text())
    assert results["n_samples"] == 2 and results["sampling"]["steps"] == 2
    # A pipeline directory has no step; bad sizes are one-line errors.
    pipe_dir = tmp_path / "pipe"
    assert main(["export", str(run), "--out", str(pipe_dir)]) == 0
    capsys.readouterr()
    assert main(["probe", str(copy), "--checkpoint", str(pipe_dir)]) == 2
    assert "not a training checkpoint" in capsys.readouterr().err
    assert main(["probe", str(copy), "--size", "0"]) == 2
    assert "--size must be at least 1" in capsys.readouterr().err
    assert main(["probe", str(tmp_path / "nowhere")]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
    (copy / "metrics.jsonl").write_text("{broken\n")
    assert main(["probe", str(copy)]) == 2
    assert "is not JSON lines" in capsys.readouterr().err


def test_curves_picture_of_the_run(run, tmp_path):
    out = tmp_path / "curves.png"
    assert main(["curves", str(run), "--out", str(out)]) == 0
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape == (700, 1100, 3)  # 11 × 7 inches at 100 dpi
    assert (img < 128).mean() > 0.005  # axes, text and lines were drawn


def test_export_of_a_run_records_its_step_and_loads_the_ema_weights(run, tmp_path):
    from dreamtext.edit.pipeline import DreamTextPipeline

    assert main(["export", str(run), "--out", str(tmp_path / "pipe"), "--half"]) == 0
    state = json.loads((tmp_path / "pipe" / "state.json").read_text())
    assert state["kind"] == "pipeline" and state["source"]["step"] == 4 and state["source"]["samples_seen"] == 8
    assert state["source"]["weights"] == "ema" and state["source"]["checkpoint"].endswith("step_00000004")
    exported = DreamTextPipeline.from_pretrained(tmp_path / "pipe").model.state_dict()
    ema_model, _ = load_model(run)
    name = next(k for k in exported if k.startswith("unet.") and k.endswith("weight"))
    torch.testing.assert_close(exported[name], ema_model.state_dict()[name], rtol=1e-3, atol=1e-4)


def test_init_from_starts_a_fresh_run_from_another_runs_ema_weights(run, tmp_path):
    cfg = load_config("test", overrides=[*BASE, f"train.out_dir={tmp_path / 'ft'}", f"train.init_from={run}"])
    trainer = Trainer(cfg)
    source, _ = load_model(run)  # EMA weights overlaid
    assert trainer.step == 0 and trainer.resumed_from is None
    for name, value in source.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[name], value), name
    other = load_config("test", overrides=[*BASE, f"train.out_dir={tmp_path / 'x'}", f"train.init_from={run}",
                                           "unet.block_out_channels=[8, 16]"])
    with pytest.raises(CheckpointError, match="cannot fine-tune from .*wrong shape"):
        Trainer(other)


def test_fresh_run_refuses_a_used_directory_and_resume_refuses_another_model(run):
    with pytest.raises(CheckpointError, match="--resume"):
        Trainer(load_config("test", overrides=[f"train.out_dir={run}"]))
    with pytest.raises(CheckpointError, match="text.dim"):
        Trainer(load_config("test", overrides=[f"train.out_dir={run}", "text.dim=48"]), resume=True)
    # a resume with nothing left to do returns at once, at the checkpoint's step
    again = train(load_config("test", overrides=[f"train.out_dir={run}", *BASE, "train.max_steps=4", "loss.k_gt=2"]),
                  resume=True, progress=False)
    assert again["step"] == 4 and again["resumed_from"].endswith("step_00000004")


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = dreamtext.train.losses.diffusion_losses

    def poisoned(model_out, batch, step, cfg):
        out = real(model_out, batch, step, cfg)
        if step >= 2:  # the third step goes wrong
            out["total"] = out["total"] * float("nan")
        return out

    monkeypatch.setattr(dreamtext.train.losses, "diffusion_losses", poisoned)
    cfg = load_config("test", overrides=[f"train.out_dir={tmp_path}", *BASE, "train.max_steps=5",
                                         "train.ckpt_every=2"])
    with pytest.raises(NonFiniteLossError, match=r"non-finite at step 3 \(total=nan\)"):
        train(cfg, progress=False)
    assert latest_checkpoint(tmp_path).name == "step_00000002"  # nothing written after the bad step
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]


def test_sigterm_stops_after_the_step_and_checkpoints(tmp_path, monkeypatch):
    real_step = Trainer.train_step

    def step_then_sigterm(self, batches):
        values = real_step(self, batches)
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return values

    monkeypatch.setattr(Trainer, "train_step", step_then_sigterm)
    cfg = load_config("test", overrides=[f"train.out_dir={tmp_path}", *BASE, "train.max_steps=50",
                                         "train.ckpt_every=0"])
    summary = train(cfg, progress=False)
    assert summary["stopped"] == "terminated" and summary["step"] == 2
    assert latest_checkpoint(tmp_path).name == "step_00000002"
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None) or callable(signal.getsignal(signal.SIGTERM))


def test_loss_values_copies_every_term_at_once():
    got = loss_values({"total": torch.tensor(1.5), "miou": torch.tensor([0.25, float("nan")]), "gt_frac": 1,
                       "attn": torch.tensor(2.0)})
    assert list(got) == ["total", "miou", "gt_frac", "attn"]  # the objective's order
    assert got["total"] == 1.5 and got["attn"] == 2.0 and got["gt_frac"] == 1.0 and math.isnan(got["miou"])
    assert all(type(v) is float for v in got.values())


def test_compiled_unet_trains_as_eager_does_and_keeps_the_checkpoint_names(tmp_path):
    from safetensors.torch import load_file
    from torch._dynamo.utils import counters

    from dreamtext.errors import ConfigError

    def run_two_steps(name, *extra):
        cfg = load_config("test", overrides=[*BASE, f"train.out_dir={tmp_path / name}", "train.max_steps=2",
                                             "train.sample_every=2", "train.warmup_steps=1", *extra])
        summary = train(cfg, progress=False)
        return summary, read_metrics(tmp_path / name), latest_checkpoint(tmp_path / name)

    eager, eager_log, eager_ckpt = run_two_steps("eager")
    graphs_before = counters["stats"]["unique_graphs"]
    compiled, compiled_log, compiled_ckpt = run_two_steps("compiled", "train.compile=true",
                                                          "train.compile_backend=aot_eager")
    # The UNet went through dynamo as one graph (no breaks), and the sample grid (other shapes, no grad) ran
    # eagerly: compiled, it would have added graphs of its own.
    assert counters["stats"]["unique_graphs"] - graphs_before == 1
    assert compiled["step"] == 2 and compiled["stopped"] == "finished"
    # Same seed, same batches: the traced UNet computes what the eager one does, step after step.
    for a, b in zip(eager_log, compiled_log):
        for key in ("loss/total", "loss/mask", "loss/attn", "miou"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
    # nn.Module.compile works in place: no "_orig_mod." in the weights' names, so checkpoints are interchangeable.
    for part in ("model", "ema"):
        names = set(load_file(str(compiled_ckpt / f"{part}.safetensors")))
        assert names == set(load_file(str(eager_ckpt / f"{part}.safetensors"))), part
    assert (tmp_path / "compiled" / "samples" / "step_00000002.png").is_file()  # the grid ran eagerly
    with pytest.raises(ConfigError, match="train.compile_backend 'nope' is not a torch.compile backend"):
        Trainer(load_config("test", overrides=[*BASE, f"train.out_dir={tmp_path / 'x'}", "train.compile=true",
                                               "train.compile_backend=nope"]))
