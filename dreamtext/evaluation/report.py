"""Writing what an evaluation or ablation found: results.json, samples.csv, report.md and picture grids.

Everything goes through :mod:`dreamtext.io_utils` atomic writes, so a killed
run leaves either the previous report or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from ..io_utils import atomic_save_image, atomic_write_text

# (key, label, how to show it) of the report table; "pct" shows a fraction as a percentage.
TABLE_ROWS = (
    ("seq_acc_ci", "SeqAcc, case-insensitive (%) ↑", "pct", "ocr_ceiling_seq_acc_ci"),
    ("seq_acc_cs", "SeqAcc, case-sensitive (%) ↑", "pct", "ocr_ceiling_seq_acc_cs"),
    ("ned", "NED, case-insensitive ↓", "f3", "ocr_ceiling_ned"),
    ("ned_cs", "NED, case-sensitive ↓", "f3", None),
    ("ssim_region", "SSIM, region ↑", "f3", None),
    ("psnr_region", "PSNR, region (dB) ↑", "f2", None),
    ("mse_region", "MSE, region ↓", "f4", None),
    ("ssim", "SSIM, image ↑", "f3", None),
    ("psnr", "PSNR, image (dB) ↑", "f2", None),
    ("mse", "MSE, image ↓", "f4", None),
    ("ssim_gt", "SSIM vs ground-truth edit, region ↑", "f3", None),
    ("psnr_gt", "PSNR vs ground-truth edit (dB) ↑", "f2", None),
    ("text_color_de_median", "text colour CIEDE2000, median ↓", "f2", None),
    ("text_color_de", "text colour CIEDE2000, mean ↓", "f2", None),
    ("background_de_median", "background CIEDE2000, median ↓", "f2", None),
    ("sharpness_ratio_median", "sharpness ratio vs truth, median", "f2", None),
    ("mask_miou", "character-mask mIoU ↑", "f3", "mask_miou_slices"),
    ("lpips", "LPIPS (AlexNet) ↓", "f4", None),
    ("fid", "FID (Inception) ↓", "f2", None),
    ("seconds", "seconds per sample", "f2", None),
)


def fmt(value, how: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if how == "pct":
        return f"{100.0 * value:.1f}"
    return f"{value:.{how[1:]}f}"


def rows_to_csv(rows: list[dict]) -> str:
    """One CSV line per sample; the columns are the union of the rows' keys, in first-seen order."""
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def stack_strips(strips: list[bytes]) -> np.ndarray:
    """PNG rows (any widths) stacked top to bottom on white: uint8 RGB."""
    from PIL import Image

    from ..visualize import image_grid

    images = [np.asarray(Image.open(io.BytesIO(s)).convert("RGB")) for s in strips]
    return image_grid([[im] for im in images], pad=2)


def metrics_table(metrics: dict, notices: list[str]) -> str:
    """The markdown table of a results dict's metrics, the OCR ceiling beside each text metric."""
    if "seq_acc_ci" not in metrics:  # a ceiling-only run: the OCR alone
        lines = ["| metric | OCR on the ground truth |", "| --- | ---: |"]
        for key, label, how, ceiling_key in TABLE_ROWS:
            if ceiling_key in metrics:
                lines.append(f"| {label} | {fmt(metrics[ceiling_key], how)} |")
        return "\n".join(lines)
    # The reference column: the OCR's ceiling for text metrics; for the mask mIoU, the letter-blind
    # baseline (even slices of the word box, metrics.even_slice_masks) on the same records.
    lines = ["| metric | model | OCR on the ground truth (ceiling); masks: even slices of the box |",
             "| --- | ---: | ---: |"]
    for key, label, how, ceiling_key in TABLE_ROWS:
        if key not in metrics:
            if key in ("lpips", "fid"):
                lines.append(f"| {label} | skipped (see notes) | |")
            continue
        ceiling = fmt(metrics.get(ceiling_key), how) if ceiling_key else ""
        lines.append(f"| {label} | {fmt(metrics[key], how)} | {ceiling} |")
    return "\n".join(lines)


def render_markdown(results: dict, has_grids: bool) -> str:
    m = results["metrics"]
    s = results["sampling"]
    head = [
        f"# DreamText evaluation: `{results['task']}` on `{results['data']}`",
        "",
        f"- samples evaluated: **{results['n_samples']}** (skipped: {results['n_skipped']})",
        f"- checkpoint: `{results['checkpoint']}` — weights sha256 `{results['weights_sha256'][:16]}…`"
        if results.get("weights_sha256") else "- no model: the OCR's accuracy on the untouched inputs only",
        f"- OCR: `{results['ocr']}` on the rectified word region",
    ]
    if results.get("weights_sha256"):
        restarts = (f", {s['restarts']} restarts at strength {s['restart_strength']:g}"
                    if s.get("restarts") else "")
        head.insert(4, f"- sampling: {s['sampler']}, {s['steps']} steps{restarts}, guidance {s['guidance']}, seed "
                       f"{results['seed']} (sample *i* uses seed + *i*); glyph prior "
                       f"{'on' if results['glyph_prior'] else 'off'}; recognition loss "
                       f"{results.get('recognition_loss') or 'off'}; paste-back detail "
                       f"{s.get('upscale', 'bilinear')}"
                       + (f" (refiner `{results['refiner']['path']}`, sha256 "
                          f"`{results['refiner']['weights_sha256'][:16]}…`)" if results.get("refiner") else ""))
        if results.get("verifier"):  # the numbers are of the kept sample of several, say so and by which judge
            v = results["verifier"]
            head.insert(5, f"- **best of {s['candidates']} candidates** per record, kept by the word verifier "
                           f"`{v['path']}` — weights sha256 `{v['weights_sha256'][:16]}…`")
    style = results.get("style_ref")
    if style and results.get("weights_sha256"):
        head.append(f"- style reference: model {'has' if style['model'] else 'has no'} input for it; "
                    f"{'shown the old word' if style['used'] else 'region masked only (the paper protocol)'}")
    if "mask_miou_n" in m:
        head.append(f"- character-mask mIoU over {m['mask_miou_n']} samples with ground-truth masks")
    body = ["", metrics_table(m, results.get("notices", [])), ""]
    if results.get("metrics_by_height"):
        body += ["By word height (pixels in the scene; medians for the colour errors and sharpness):", "",
                 "| height | n | SeqAcc (%) | OCR ceiling (%) | SSIM vs truth | text ΔE | background ΔE | sharpness |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for bucket, b in results["metrics_by_height"].items():
            body.append(f"| {bucket} | {b['n']} | {fmt(b.get('seq_acc_ci'), 'pct')} | "
                        f"{fmt(b.get('ocr_ceiling_seq_acc_ci'), 'pct')} | {fmt(b.get('ssim_gt'), 'f3')} | "
                        f"{fmt(b.get('text_color_de_median'), 'f2')} | {fmt(b.get('background_de_median'), 'f2')} | "
                        f"{fmt(b.get('sharpness_ratio_median'), 'f2')} |")
        body.append("")
    if results.get("notices"):
        body += ["Notes:", ""] + [f"- {n}" for n in results["notices"]] + [""]
    if results["n_skipped"]:
        body += [f"Skipped samples (first {min(5, len(results['skipped']))}):", ""]
        body += [f"- #{k['index']} `{k['text']}`: {k['reason']}" for k in results["skipped"][:5]] + [""]
    if has_grids and results["task"] == "style":
        body += ["Each row: the source scene, the edited output, the ground-truth edit, the output with the "
                 "predicted character masks, then the target and what the OCR read in the output and in the "
                 "ground truth.", "",
                 "## Best samples", "", "![best samples](best.png)", "",
                 "## Worst samples", "", "![worst samples](worst.png)", ""]
    elif has_grids:
        body += ["Each row: the input, the masked input the model sees, the output, the output with the "
                 "predicted character masks (one colour per character), then the target and what the OCR read "
                 "in the output and in the input.", "",
                 "## Best samples", "", "![best samples](best.png)", "",
                 "## Worst samples", "", "![worst samples](worst.png)", ""]
    body += ["Per-sample numbers: `samples.csv`; everything above and the full config: `results.json`.", ""]
    return "\n".join(head + body)


def write_outputs(out_dir: str | Path, results: dict, rows: list[dict], strips: dict[int, bytes],
                  n_grid: int = 8) -> None:
    """results.json, samples.csv, best.png / worst.png and report.md in ``out_dir``."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2, default=_json_default) + "\n")
    atomic_write_text(out / "samples.csv", rows_to_csv(rows))
    ranked = [r for r in rank_samples(rows) if r["index"] in strips] if strips else []
    has_grids = bool(ranked)
    if has_grids:
        k = min(n_grid, len(ranked))
        atomic_save_image(out / "best.png", stack_strips([strips[r["index"]] for r in ranked[:k]]))
        atomic_save_image(out / "worst.png", stack_strips([strips[r["index"]] for r in ranked[::-1][:k]]))
    atomic_write_text(out / "report.md", render_markdown(results, has_grids))


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


# ----------------------------------------------------------------------------- ablation

ABLATION_COLUMNS = (
    ("seq_acc_ci", "SeqAcc ci %", "pct"), ("seq_acc_cs", "SeqAcc cs %", "pct"), ("ned", "NED", "f3"),
    ("ssim_region", "SSIM region", "f3"), ("psnr_region", "PSNR region", "f2"),
    ("mask_miou", "mask mIoU", "f3"), ("mask_miou_slices", "even-slices mIoU", "f3"),
    ("ocr_ceiling_seq_acc_ci", "OCR ceiling %", "pct"),
)


def ablation_markdown(entries: list[dict], header: str) -> str:
    """One comparison table: a row per variant (``name``, ``overrides``, ``train_loss``, ``metrics``)."""
    lines = [header, "", "| variant | config changes | final loss | "
             + " | ".join(label for _, label, _ in ABLATION_COLUMNS) + " |",
             "| --- | --- | ---: | " + " | ".join("---:" for _ in ABLATION_COLUMNS) + " |"]
    for e in entries:
        cells = [fmt(e["metrics"].get(k), how) for k, _, how in ABLATION_COLUMNS]
        loss = fmt(e.get("train_loss"), "f4")
        changes = " ".join(e.get("changes", e["overrides"])) or "—"  # what sets this variant apart
        lines.append(f"| {e['name']} | `{changes}` | {loss} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rank_samples(rows: list[dict]) -> list[dict]:
    """Rows from best to worst: exact reads first, then by NED, then by region SSIM (higher is better)."""
    def score(r):
        ssim = r.get("ssim_region", float("nan"))
        return (-r["seq_acc_ci"], r["ned"], -(ssim if not math.isnan(ssim) else -1.0), r["index"])

    return sorted(rows, key=score)
