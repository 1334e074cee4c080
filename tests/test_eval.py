"""`dreamtext eval` end to end on a tiny random model and the real benchmark split."""

import contextlib
import csv
import io
import json
import os
import re
import sys

import numpy as np
import pytest
import torch
from _eval_fixtures import random_lpips_weights, save_pool_features  # noqa: E402
from PIL import Image

from dreamtext.cli import main
from dreamtext.config import load_config
from dreamtext.evaluation import metrics

LIMIT = 3


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A randomly initialised `test`-preset model saved as a pipeline directory."""
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.model.network import DreamTextModel

    cfg = load_config("test")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "pipe"
    DreamTextPipeline(DreamTextModel(cfg), cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def recon_run(tiny_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "recon"
    with pytest.MonkeyPatch.context() as mp:  # a machine with LPIPS / FID weights configured still tests the skip
        mp.delenv(metrics.LPIPS_ENV, raising=False)
        mp.delenv(metrics.FID_ENV, raising=False)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            rc = main(["eval", "--data", "bench", "--task", "recon", "--ckpt", str(tiny_ckpt), "--limit", str(LIMIT),
                       "--out", str(out), "--steps", "2", "--no-progress"])
    assert rc == 0
    (out.parent / "stdout.txt").write_text(printed.getvalue())
    return out


def test_summary_names_the_reference_beside_each_metric(recon_run):
    printed = (recon_run.parent / "stdout.txt").read_text()
    assert re.search(r"SeqAcc, case-insensitive \(%\).*\(OCR ceiling [0-9.]+\)", printed)
    # The mask mIoU's reference is the letter-blind baseline, not the OCR.
    assert re.search(r"character-mask mIoU.*\(even slices 0\.[0-9]{3}\)", printed)
    assert not re.search(r"mIoU.*OCR ceiling", printed)


def test_recon_writes_every_file(recon_run, tiny_ckpt):
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.evaluation.evaluate import weights_sha256

    for name in ("results.json", "samples.csv", "report.md", "best.png", "worst.png"):
        assert (recon_run / name).is_file(), name
    res = json.loads((recon_run / "results.json").read_text())
    m = res["metrics"]
    for key in ("seq_acc_ci", "seq_acc_cs", "ned", "ocr_ceiling_seq_acc_ci", "mask_miou", "ssim_region", "psnr"):
        assert key in m, key
    assert res["n_samples"] + res["n_skipped"] == LIMIT and res["n_samples"] >= 1
    assert res["seed"] == 0 and res["sampling"]["steps"] == 2 and res["ocr"] == "rapidocr-ppocr-rec"
    assert res["config"]["preset"] == "test"
    assert res["weights_sha256"] == weights_sha256(DreamTextPipeline.from_pretrained(tiny_ckpt).model)
    assert 0.0 <= m["seq_acc_cs"] <= m["seq_acc_ci"] <= 1.0 and 0.0 <= m["ned"] <= 1.0
    assert 0.0 <= m["mask_miou"] <= 1.0 and m["mask_miou_n"] == res["n_samples"]
    # The pipeline copies every pixel outside the region: the image changes less than its region does.
    assert m["mse"] < m["mse_region"] and m["psnr"] > m["psnr_region"]
    assert "lpips" not in m and "fid" not in m and len(res["notices"]) == 2  # skipped, never invented
    assert res["perceptual_weights"] == {"lpips": None, "fid": None}
    rows = list(csv.DictReader((recon_run / "samples.csv").open()))
    assert len(rows) == res["n_samples"]
    assert all(r["target"] == r["text"] for r in rows)  # recon: the word it already holds
    assert np.mean([float(r["seq_acc_ci"]) for r in rows]) == pytest.approx(m["seq_acc_ci"])
    # Beside every mask mIoU: the letter-blind baseline (even slices of the box) on the same record.
    from dreamtext.data.sources import bench_source

    first = next(iter(bench_source(load_config("test"))))
    slices = metrics.even_slice_masks(first.word_quad, len(first.text), first.image.shape[:2])
    row = next(r for r in rows if r["key"] == first.key)
    assert float(row["mask_miou_slices"]) == pytest.approx(metrics.char_mask_miou(slices, first.char_masks), abs=1e-5)
    assert m["mask_miou_slices"] == pytest.approx(np.mean([float(r["mask_miou_slices"]) for r in rows]))
    report = (recon_run / "report.md").read_text()
    assert "OCR on the ground truth (ceiling)" in report and "![best samples](best.png)" in report
    assert f"| {m['mask_miou_slices']:.3f} |" in report  # the baseline in the mask row's reference column
    assert "DREAMTEXT_LPIPS_DIR" in report
    assert np.asarray(Image.open(recon_run / "best.png")).shape[0] >= 48


def test_edit_uses_fixed_held_out_words_and_is_reproducible(tiny_ckpt, tmp_path):
    from dreamtext.data.words import edit_word_for

    outs = []
    # b: two worker processes sharing the records; c: the three records in one sampling batch
    # (c also narrows the masks to strokes: the edit task scores no masks, so its rows must not change)
    for name, workers, batch in (("a", 1, 1), ("b", 2, 1), ("c", 1, 3)):
        rc = main(["eval", "--data", "bench", "--task", "edit", "--ckpt", str(tiny_ckpt), "--limit", "3",
                   "--out", str(tmp_path / name), "--steps", "2", "--restarts", "1", "--no-progress",
                   "--workers", str(workers), "--batch", str(batch),
                   *(["--mask-rule", "strokes"] if name == "c" else [])])
        assert rc == 0
        outs.append(list(csv.DictReader((tmp_path / name / "samples.csv").open())))
    for r in outs[0]:
        assert r["target"] == edit_word_for(r["text"], int(r["index"]))
        assert len(r["target"]) == len(r["text"]) and r["target"] != r["text"]
    def without_timing(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    # same seed, same numbers, however many workers (sample i always uses seed + i)
    assert [r["index"] for r in outs[1]] == ["0", "1", "2"]
    assert without_timing(outs[0]) == without_timing(outs[1])
    # batched: the same noise per record (its own seed); only the batched UNet's float rounding may differ
    for one, batched in zip(outs[0], outs[2]):
        for k, v in without_timing([one])[0].items():
            if k in ("ssim", "psnr", "mse", "ssim_region", "psnr_region", "mse_region"):
                assert float(batched[k]) == pytest.approx(float(v), rel=1e-3, abs=1e-4), k
            else:
                assert batched[k] == v, k
    res, res2 = (json.loads((tmp_path / n / "results.json").read_text()) for n in ("a", "b"))
    assert "mask_miou" not in res["metrics"]  # ground-truth masks belong to the original word
    assert res2["workers"] == 2
    assert without_timing([res2["metrics"]]) == without_timing([res["metrics"]])
    assert res2["weights_sha256"] == res["weights_sha256"]
    assert res["sampling"]["restarts"] == 1 and res["sampling"]["restart_strength"] == 0.6
    assert res["sampling"]["mask_rule"] == "attention" and res["sampling"]["blend"] == "feather"
    assert json.loads((tmp_path / "c" / "results.json").read_text())["sampling"]["mask_rule"] == "strokes"
    assert "2 steps, 1 restarts at strength 0.6" in (tmp_path / "a" / "report.md").read_text()


def test_lpips_and_fid_when_weights_present(tiny_ckpt, tmp_path, monkeypatch):
    lp = tmp_path / "lpips"
    lp.mkdir()
    random_lpips_weights(lp, "safetensors")
    save_pool_features(tmp_path / "inception.pt")
    monkeypatch.setenv(metrics.LPIPS_ENV, str(lp))
    monkeypatch.setenv(metrics.FID_ENV, str(tmp_path / "inception.pt"))
    rc = main(["eval", "--data", "bench", "--ckpt", str(tiny_ckpt), "--limit", str(LIMIT), "--out",
               str(tmp_path / "out"), "--steps", "1", "--no-progress"])
    assert rc == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["notices"] == []
    assert res["perceptual_weights"] == {"lpips": str(lp), "fid": str(tmp_path / "inception.pt")}
    assert res["metrics"]["lpips"] > 0 and np.isfinite(res["metrics"]["fid"])


def test_ceiling_only_needs_no_model(tmp_path):
    rc = main(["eval", "--data", "bench", "--ceiling-only", "--limit", "4", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["weights_sha256"] is None and res["task"] == "ceiling"
    assert set(res["metrics"]) == {"ocr_ceiling_seq_acc_ci", "ocr_ceiling_seq_acc_cs", "ocr_ceiling_ned"}
    assert "| SeqAcc, case-insensitive (%) ↑ |" in (tmp_path / "report.md").read_text()


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["eval", "--ckpt", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--limit", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "--limit", "0", "--out", str(tmp_path / "o"), "--ceiling-only"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err
    assert main(["eval", "--device", "gpu0", "--out", str(tmp_path / "o"), "--limit", "1"]) == 2
    assert "unknown device 'gpu0'" in capsys.readouterr().err
    assert main(["eval", "--device", "meta", "--out", str(tmp_path / "o"), "--limit", "1"]) == 2
    assert "runs on cpu or cuda" in capsys.readouterr().err
    if not torch.cuda.is_available():  # the machine this suite runs on in CI
        assert main(["eval", "--device", "cuda", "--out", str(tmp_path / "o"), "--limit", "1"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


def _icdar13_folder(root):
    """Two photos in the ICDAR 2013 layout (``img_N.png`` + ``gt_img_N.txt``), words drawn at known boxes."""
    from dreamtext.evaluation.ocr import render_clean_word, system_fonts

    root.mkdir()
    font = system_fonts()[0]
    for i, word in enumerate(["Market", "OPEN"]):
        photo = np.full((90, 200, 3), (200, 190, 170), np.uint8)
        photo[30:62, 40:168] = render_clean_word(word, font, (32, 128))
        Image.fromarray(photo).save(root / f"img_{i + 1}.png")
        (root / f"gt_img_{i + 1}.txt").write_text(f'40, 30, 168, 62, "{word}"\n')
    return root


def test_source_without_character_masks(tiny_ckpt, tmp_path):
    data = _icdar13_folder(tmp_path / "icdar13")
    rc = main(["eval", "--data", f"icdar13:{data}", "--ckpt", str(tiny_ckpt), "--out", str(tmp_path / "out"),
               "--steps", "1", "--no-progress"])
    assert rc == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["n_samples"] == 2 and "mask_miou" not in res["metrics"]  # ICDAR13 has no character masks
    assert res["metrics"]["ocr_ceiling_seq_acc_ci"] == 1.0  # clean words on a plain wall: the OCR reads both
    rows = list(csv.DictReader((tmp_path / "out" / "samples.csv").open()))
    assert sorted(r["ocr_gt"] for r in rows) == ["Market", "OPEN"]


def _state_and_parent(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process from Linux /proc, or None when it is gone."""
    from pathlib import Path

    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    info = _state_and_parent(pid)
    return info is not None and info[0] != "Z"


def _children(pid: int) -> dict[int, str]:
    """{pid: command line} of the live processes whose parent is ``pid``."""
    from pathlib import Path

    out = {}
    for proc in Path("/proc").iterdir():
        info = _state_and_parent(int(proc.name)) if proc.name.isdigit() else None
        if info is None or info[1] != pid or info[0] == "Z":
            continue
        try:
            out[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_evaluation_leaves_no_workers_behind(tiny_ckpt, tmp_path):
    """SIGKILL the parent of `dreamtext eval --workers 2`: its spawned workers stop within seconds."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen([sys.executable, "-m", "dreamtext.cli", "eval", "--data", "bench", "--task", "recon",
                             "--ckpt", str(tiny_ckpt), "--limit", "200", "--steps", "2", "--workers", "2",
                             "--out", str(tmp_path / "ev"), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(workers) < 2:
            workers = {p: c for p, c in _children(proc.pid).items() if "spawn_main" in c}
            time.sleep(0.2)
        assert len(workers) == 2, "the evaluation did not start two workers"
        time.sleep(3)  # let them load and start on their records
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.5)
        assert not any(_alive(p) for p in workers), "workers outlived the killed evaluation"
    finally:  # a failed run must not leave its processes behind either
        if proc.poll() is None:
            proc.kill()
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_recon_keeps_the_papers_paste_back_whatever_a_model_ships():
    """A model may ship blend=auto and upscale=unsharp for edits; reconstruction stays feather + bilinear."""
    from dreamtext.evaluation.protocol import EvalSettings, sampling_options

    cfg = load_config("test").override({"sample.blend": "auto", "sample.upscale": "unsharp", "style_ref": True})
    recon = sampling_options(EvalSettings(task="recon"), cfg)
    assert recon.upscale == "bilinear" and not recon.style_ref  # auto then feathers (the pipeline's rule)
    assert sampling_options(EvalSettings(task="recon", upscale="matte"), cfg).upscale == "matte"  # asked for
    edit = sampling_options(EvalSettings(task="edit"), cfg)
    assert edit.upscale == "unsharp" and edit.blend == "auto" and edit.style_ref
