"""`dreamtext ablate` on the test preset with a two-step budget: trains, evaluates, compares, resumes."""

import json
import shutil

import pytest

from dreamtext.cli import main
from dreamtext.errors import ConfigError
from dreamtext.evaluation.ablate import VARIANTS, AblationSettings, run_ablation, variant_overrides


def test_variant_overrides_and_k_gt(tmp_path):
    s = AblationSettings(steps=700, overrides=["train.lr=1e-4"])
    assert s.k_gt_steps() == 100  # the paper's 25k of 175k
    ov = variant_overrides(s, "balanced-max-contrast", tmp_path)
    assert ov[:4] == ["train.max_steps=700", "train.seed=0", f"train.out_dir={tmp_path}", "loss.k_gt=100"]
    assert ov[4:] == ["train.lr=1e-4", "loss.supervision=balanced", "loss.attn_form=max_contrast"]
    from dreamtext.config import load_config

    for name in VARIANTS:  # every variant is a valid config
        load_config("tiny", overrides=variant_overrides(s, name, tmp_path))
    with pytest.raises(ConfigError, match="unknown ablation variant"):
        AblationSettings(variants=("gt", "magic")).check()
    with pytest.raises(ConfigError, match="unknown device"):  # refused before any training
        AblationSettings(eval_device="tpu:x").check()


def test_ablation_trains_evaluates_and_resumes(tmp_path, capsys):
    rc = main(["ablate", "--out", str(tmp_path), "--preset", "test", "--steps", "2", "--eval-limit", "1",
               "--eval-steps", "1", "--no-progress"])
    assert rc == 0
    table = (tmp_path / "ablation.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| variant")
            and not line.startswith("| ---")]
    assert [r.split("|")[1].strip() for r in rows] == ["none", "gt", "balanced"]
    summary = json.loads((tmp_path / "ablation.json").read_text())
    hashes = set()
    for entry in summary["variants"]:
        res = json.loads((tmp_path / entry["name"] / "eval" / "results.json").read_text())
        assert res["config"]["loss"]["supervision"] == entry["name"]
        assert res["config"]["train"]["max_steps"] == 2 and res["config"]["loss"]["k_gt"] == 1
        assert "seq_acc_ci" in entry["metrics"] and "ocr_ceiling_seq_acc_ci" in entry["metrics"]
        hashes.add(entry["weights_sha256"])
    assert len(hashes) == 3  # the supervision mode changed what was learnt
    capsys.readouterr()
    stamp = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.safetensors")}
    entries = run_ablation(AblationSettings(preset="test", steps=2, eval_limit=1, eval_steps=1), tmp_path,
                           progress=False)
    assert "already evaluated" in capsys.readouterr().out
    assert [e["weights_sha256"] for e in entries] == [e["weights_sha256"] for e in summary["variants"]]
    assert stamp == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.safetensors")}  # nothing retrained

    # A moved ablation folder (or variants evaluated elsewhere and copied in) is still reused.
    moved = tmp_path.parent / "moved-ablation"
    shutil.move(str(tmp_path), moved)
    entries = run_ablation(AblationSettings(preset="test", steps=2, eval_limit=1, eval_steps=1), moved,
                           progress=False)
    assert capsys.readouterr().out.count("already evaluated") == 3
    assert [e["weights_sha256"] for e in entries] == [e["weights_sha256"] for e in summary["variants"]]
    assert not list(moved.rglob("step_00000003"))
    # A different budget is a different experiment: not reused.
    assert not any(e["overrides"] == variant_overrides(AblationSettings(steps=3), e["name"], moved / e["name"] / "run")
                   for e in entries)
