"""Aggregation, ranking and the report writer of the evaluation (no model needed)."""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from dreamtext.errors import ConfigError
from dreamtext.evaluation.evaluate import EvalSettings, aggregate, sample_strip
from dreamtext.evaluation.report import ablation_markdown, rank_samples, render_markdown, rows_to_csv, write_outputs
from dreamtext.visualize import context_box


def _row(i, acc, ned, ssim_region=0.5, **kw):
    return {"index": i, "text": f"w{i}", "seq_acc_ci": acc, "seq_acc_cs": acc, "ned": ned, "ned_cs": ned,
            "ocr_ceiling_seq_acc_ci": 1.0, "ssim_region": ssim_region, **kw}


def test_aggregate_means_skip_nan_and_absent():
    rows = [_row(0, 1.0, 0.0, mask_miou=0.5), _row(1, 0.0, 0.5, ssim_region=float("nan")), _row(2, 0.0, 1.0)]
    agg = aggregate(rows)
    assert agg["seq_acc_ci"] == pytest.approx(1 / 3)
    assert agg["ned"] == pytest.approx(0.5)
    assert agg["ssim_region"] == pytest.approx(0.5)  # the NaN row is left out
    assert agg["mask_miou"] == 0.5 and agg["mask_miou_n"] == 1
    assert "lpips" not in agg and "fid" not in agg  # never a made-up number


def test_rank_samples_best_to_worst():
    rows = [_row(0, 0.0, 0.5), _row(1, 1.0, 0.0, ssim_region=0.2), _row(2, 1.0, 0.0, ssim_region=0.9),
            _row(3, 0.0, 0.2)]
    assert [r["index"] for r in rank_samples(rows)] == [2, 1, 3, 0]


def test_rows_to_csv_union_of_columns():
    text = rows_to_csv([_row(0, 1.0, 0.0), _row(1, 0.0, 0.25, mask_miou=0.125)])
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 2 and parsed[0]["mask_miou"] == "" and parsed[1]["mask_miou"] == "0.125"
    assert parsed[1]["ned"] == "0.25" and parsed[0]["text"] == "w0"


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="unknown task"):
        EvalSettings(task="translate").check()
    with pytest.raises(ConfigError, match="at least 1"):
        EvalSettings(limit=0).check()


def test_context_box_and_strip():
    quad = np.array([[20, 10], [60, 10], [60, 30], [20, 30]], np.float32)
    assert context_box(quad, (40, 100)) == (slice(0, 40), slice(10, 70))
    img = np.full((40, 100, 3), 200, np.uint8)
    out = img.copy()
    out[10:30, 20:60] = 30
    masks = np.zeros((2, 40, 100), bool)
    masks[0, 12:28, 22:38] = True
    png = sample_strip(img, out, quad, masks, "ab", "a8", "ab", height=40)
    strip = np.asarray(Image.open(io.BytesIO(png)))
    assert strip.shape[0] >= 40 and strip.shape[1] > 4 * 60  # four panels side by side
    assert len(np.unique(strip.reshape(-1, 3), axis=0)) > 4  # masks coloured, captions drawn


def _results(metrics, notices=()):
    return {"task": "recon", "data": "bench", "n_samples": 2, "n_skipped": 1,
            "skipped": [{"index": 5, "key": "k", "text": "toolongword", "reason": "too long"}],
            "seed": 0, "sampling": {"steps": 4, "guidance": 3.0, "sampler": "ddim"}, "checkpoint": "x",
            "weights_sha256": "ab" * 32, "glyph_prior": False, "ocr": "rapidocr-ppocr-rec",
            "metrics": metrics, "notices": list(notices)}


def test_markdown_shows_ceiling_and_skips():
    md = render_markdown(_results({"seq_acc_ci": 0.25, "ocr_ceiling_seq_acc_ci": 0.875, "ned": 0.5},
                                  ["LPIPS skipped: no weights; set DREAMTEXT_LPIPS_DIR ..."]), has_grids=False)
    assert "| SeqAcc, case-insensitive (%) ↑ | 25.0 | 87.5 |" in md
    assert "| LPIPS (AlexNet) ↓ | skipped (see notes) | |" in md
    assert "DREAMTEXT_LPIPS_DIR" in md and "toolongword" in md and "best.png" not in md


def test_write_outputs_files(tmp_path):
    rows = [_row(0, 0.0, 1.0), _row(1, 1.0, 0.0)]
    strips = {}
    for i, shade in ((0, 10), (1, 240)):
        buf = io.BytesIO()
        Image.fromarray(np.full((20, 50 + 10 * i, 3), shade, np.uint8)).save(buf, format="PNG")
        strips[i] = buf.getvalue()
    write_outputs(tmp_path, _results(aggregate(rows)), rows, strips, n_grid=1)
    assert json.loads((tmp_path / "results.json").read_text())["metrics"]["seq_acc_ci"] == 0.5
    assert len((tmp_path / "samples.csv").read_text().strip().splitlines()) == 3
    best, worst = np.asarray(Image.open(tmp_path / "best.png")), np.asarray(Image.open(tmp_path / "worst.png"))
    assert best[5, 5, 0] == 240 and worst[5, 5, 0] == 10  # sample 1 read correctly → best
    assert "![worst samples](worst.png)" in (tmp_path / "report.md").read_text()


def test_ablation_table():
    md = ablation_markdown([{"name": "gt", "overrides": ["train.max_steps=9", "loss.supervision=gt"],
                             "changes": ["loss.supervision=gt"], "train_loss": 0.123456,
                             "metrics": {"seq_acc_ci": 0.5, "ned": 0.25, "ocr_ceiling_seq_acc_ci": 0.9,
                                         "mask_miou": 0.4, "mask_miou_slices": 0.3}}], "# T")
    line = [l for l in md.splitlines() if l.startswith("| gt")][0]
    assert "| `loss.supervision=gt` |" in line and "0.1235" in line and "50.0" in line and "90.0" in line
    assert "| 0.400 | 0.300 |" in line  # the mask mIoU beside its letter-blind baseline
    assert md.startswith("# T\n") and md.count("\n| ") == 3  # header, rule, one row
