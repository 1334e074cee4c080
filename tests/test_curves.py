"""The training-curve picture: series extraction, smoothing, and clear errors on what is not a run."""

import json

import numpy as np
import pytest

from dreamtext.errors import DatasetError
from dreamtext.evaluation.curves import plot_run, probe_sampling_changes, series, smooth


def test_series_keeps_finite_values_in_step_order():
    recs = [{"step": 20, "a": 2.0}, {"step": 10, "a": 1.0}, {"step": 30, "a": float("nan")}, {"step": 40, "b": 5.0}]
    steps, values = series(recs, "a")
    assert steps.tolist() == [10, 20] and values.tolist() == [1.0, 2.0]
    assert len(series(recs, "missing")[0]) == 0


def test_smooth_is_a_bias_corrected_moving_average():
    # s_0 = v_0; s_1 = (0.5·0.5·1 + 0.5·3) / (0.5·0.5 + 0.5) = (0.25 + 1.5) / 0.75
    assert smooth(np.array([1.0, 3.0]), weight=0.5).tolist() == pytest.approx([1.0, 1.75 / 0.75])
    assert smooth(np.full(5, 4.0)).tolist() == pytest.approx([4.0] * 5)  # a constant stays constant


def test_not_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no metrics.jsonl"):
        plot_run(tmp_path, tmp_path / "c.png")
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "probe/recon_seq_acc": 0.5}) + "\n")
    with pytest.raises(DatasetError, match="no logged training step"):
        plot_run(tmp_path, tmp_path / "c.png")
    (tmp_path / "metrics.jsonl").write_text("{not json\n")
    with pytest.raises(DatasetError, match="not JSON lines"):
        plot_run(tmp_path, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_probe_sampling_changes_are_found_in_the_probe_results(tmp_path):
    def probe(step, **sampling):
        d = tmp_path / "probes" / f"step_{step:08d}" / "recon"
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps({"sampling": {"sampler": "ddim", "steps": 10, "guidance": 3.0,
                                                                 **sampling}}))

    probe(250)  # written before restart sampling existed: no "restarts" key
    probe(500, restarts=0)
    probe(750, restarts=2, restart_strength=0.6)
    probe(1000, restarts=2, restart_strength=0.6)
    (tmp_path / "probes" / "step_00001250" / "recon").mkdir(parents=True)
    (tmp_path / "probes" / "step_00001250" / "recon" / "results.json").write_text("{broken")
    assert probe_sampling_changes(tmp_path) == [(750, "probe sampling from here: ddim, 10 steps, 2 restarts")]
    assert probe_sampling_changes(tmp_path / "nowhere") == []


def _fake_run(root, name, steps, per_step, ckpt_step=None):
    """A run directory: training lines at ``steps`` and a checkpoint that took ``per_step`` samples a step."""
    run = root / name
    ckpt = run / "checkpoints" / f"step_{ckpt_step or steps[-1]:08d}"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"")
    step = ckpt_step or steps[-1]
    (ckpt / "state.json").write_text(json.dumps({"step": step, "data": {"samples_seen": step * per_step}}))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss/total": 1.0 / s, "miou": 0.1})
                                               + "\n" for s in steps))
    return run


def test_runs_drawn_one_after_another_over_samples_seen(tmp_path):
    from PIL import Image

    from dreamtext.evaluation.curves import chain_runs

    cpu = _fake_run(tmp_path, "cpu", [10, 20, 30], per_step=16)
    gpu = _fake_run(tmp_path, "gpu", [5, 10], per_step=128)
    records, boundaries, label = chain_runs([cpu, gpu])
    # cpu: 16 samples a step → 0.16k, 0.32k, 0.48k; gpu starts at 0.48k, 128 a step → +0.64k, +1.28k
    assert [round(r["x"], 6) for r in records] == [0.16, 0.32, 0.48, 1.12, 1.76]
    assert [r["run"] for r in records] == [0, 0, 0, 1, 1]
    assert boundaries == [(pytest.approx(0.48), "gpu (128/step)")]
    assert label == "training samples seen (thousands)"
    one, none, step_label = chain_runs([cpu])  # one run keeps the step axis
    assert [r["x"] for r in one] == [10, 20, 30] and none == [] and step_label == "step"
    out = plot_run([cpu, gpu], tmp_path / "c.png")
    assert np.asarray(Image.open(out).convert("RGB")).shape == (700, 1100, 3)
    # A run without a checkpoint cannot be placed by samples: said so, no picture.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss/total": 1.0}) + "\n")
    with pytest.raises(DatasetError, match="'.*bare' has no checkpoint saying how many samples"):
        plot_run([cpu, bare], tmp_path / "d.png")
    assert not (tmp_path / "d.png").exists()


def test_paired_arms_side_by_side(tmp_path):
    import json as _json

    from dreamtext.cli import main as _main

    for name, ocr in (("a", None), ("b", 0.3)):
        run = tmp_path / name
        run.mkdir()
        lines = [{"step": s, "loss/total": 1.0 / s, "loss/mask": 0.5 / s, "miou": 0.1 * s,
                  **({"loss/ocr": ocr} if ocr else {})} for s in range(1, 6)]
        (run / "metrics.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in lines))
    out = tmp_path / "arms.png"
    assert _main(["curves", str(tmp_path / "a"), str(tmp_path / "b"), "--arms", "--out", str(out)]) == 0
    from PIL import Image

    w, h = Image.open(out).size
    assert w > 3 * h  # one panel per term, side by side: total, mask, ocr, miou
