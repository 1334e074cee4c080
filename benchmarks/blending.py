"""Does the edited region keep the scene's colour and contrast? The paste-back modes on the same samples.

    .venv/bin/python benchmarks/blending.py --limit 64 --picture docs/img/blend_compare.jpg
    .venv/bin/python benchmarks/blending.py --skip 64 --limit 64     # the next 64 records: a second sample

Every region is sampled once (``DreamTextPipeline.edit``, seed 0 for the photos, seed = index for the
``bench`` records, the model's default sampling); the same generated crop is then pasted back every way
(:func:`dreamtext.edit.paste.paste_back`: feather, poisson, inpaint), so the rows differ only in the paste-back.
Regions: the real photographs in ``dreamtext/assets/samples`` (edited to their demo words) and the first N
``bench`` records (reconstructed: their own word). Numbers, inside each region's quad (uint8 RGB, 0–255):

* ``edge gap``: mean |output − input| over the quad's outermost 2-pixel ring. The original rarely has
  letters there, so this is how far the region's edge departs from the scene around it — a seam.
* ``colour shift``: the distance (RGB) between the region's mean colour in the output and in the input.
* ``contrast``: the region's standard deviation in the output over that in the input (1 = kept).
* ``ink error``: the distance (RGB) between the median colour of the output's letters and of the input's:
  the text's colour, part of its style. Output letters: the quad's pixels that stand out from their
  local background (:func:`dreamtext.edit.paste.letter_pixels`, the detector the ``inpaint`` paste-back
  uses, with its 24/255 floor); input letters: the ground-truth character masks on ``bench``, the same
  detector on the photos (so there the ``inpaint`` row's ink is by construction the detector's).
* on ``bench`` also SeqAcc (ci) and NED of the OCR on the pasted photograph, as the evaluation reads it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def region_numbers(output, reference, quad, reference_letters) -> dict[str, float]:
    """Edge gap, colour shift, contrast ratio and ink error of ``output`` against ``reference`` inside ``quad``.

    ``reference_letters`` bool (H, W): the input's letter pixels (None: unknown, no ink error).
    """
    import cv2
    import numpy as np

    from dreamtext.data.geometry import fill_quad
    from dreamtext.edit.paste import letter_pixels, quad_height

    inside = fill_quad(quad, output.shape[:2]) > 0
    ring = inside & ~cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    out, ref = output.astype(np.float64), reference.astype(np.float64)
    numbers = {"edge_gap": float(np.abs(out[ring] - ref[ring]).mean()),
               "colour_shift": float(np.linalg.norm(out[inside].mean(0) - ref[inside].mean(0))),
               "contrast": float(out[inside].std() / max(ref[inside].std(), 1e-6))}
    if reference_letters is None:
        return numbers
    ref_letters = reference_letters & inside
    out_letters = letter_pixels(output, inside, quad_height(np.asarray(quad, np.float32)))
    if ref_letters.any() and out_letters.any():
        numbers["ink_error"] = float(np.linalg.norm(np.median(out[out_letters], 0) - np.median(ref[ref_letters], 0)))
    return numbers


def main() -> None:
    import numpy as np
    import torch
    from PIL import Image

    from dreamtext.config import BLEND_MODES
    from dreamtext.data.geometry import fill_quad
    from dreamtext.data.sources import open_source
    from dreamtext.edit.paste import letter_pixels, paste_back, quad_height
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.evaluation import metrics as M
    from dreamtext.evaluation.ocr import make_recognizer, rectify_quad

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default=None, help="run, checkpoint or pipeline directory (default: shipped)")
    ap.add_argument("--limit", type=int, default=64, help="bench records (0: photos only)")
    ap.add_argument("--skip", type=int, default=0, help="start after this many bench records (a second sample)")
    ap.add_argument("--picture", default=None, help="write input | each paste-back of every photo here")
    ap.add_argument("--json", default=None, help="write every region's numbers here")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    pipe = DreamTextPipeline.from_pretrained(args.ckpt)
    samples_dir = Path(__file__).resolve().parents[1] / "dreamtext" / "assets" / "samples"
    rows, panels = [], []

    def every_way(image, result):
        """The edit pasted back each way: {mode: uint8 (H, W, 3)}."""
        outs = {}
        for mode in BLEND_MODES:
            out = image
            for r in result.regions:
                out = paste_back(out, r.crop, r.matrix, r.quad, r.feather_px, mode)
            outs[mode] = out
        return outs

    for sample in json.loads((samples_dir / "samples.json").read_text()):
        quads = [np.asarray(r["quad"], np.float32) for r in sample["regions"]]
        texts = [r["text"] for r in sample["regions"]]
        result = pipe.edit(samples_dir / sample["image"], quads, texts, seed=0)
        outs = every_way(result.input, result)
        for r in result.regions:
            # no ground truth on a photo: its letters as the inpaint paste-back finds them (once per region)
            old = letter_pixels(result.input, fill_quad(r.quad, result.input.shape[:2]) > 0, quad_height(r.quad))
            rows.append({"kind": "photo", "name": f"{sample['image']}:{r.text}",
                         **{f"{m}/{k}": v for m in BLEND_MODES
                            for k, v in region_numbers(outs[m], result.input, r.quad, old).items()}})
        panels.append(np.concatenate([result.input, *(outs[m] for m in BLEND_MODES)], 1))
        print(sample["image"], "done", flush=True)

    if args.limit:
        recognizer = make_recognizer("rapidocr")
        source = open_source("bench", pipe.cfg, split="bench")
        for index, record in zip(range(args.skip + args.limit), source.iter_part(0, 1)):
            if index < args.skip:
                continue
            result = pipe.edit(record.image, [record.word_quad], [record.text], seed=index)
            outs = every_way(result.input, result)
            quad = result.regions[0].quad
            truth = record.char_masks.any(0) if record.char_masks is not None else None  # (H, W) the letters
            row = {"kind": "bench", "name": record.key}
            for mode in BLEND_MODES:
                reading = recognizer.read([rectify_quad(outs[mode], quad)])[0]
                row.update({f"{mode}/{k}": v
                            for k, v in region_numbers(outs[mode], result.input, quad, truth).items()})
                row[f"{mode}/seq_acc_ci"] = M.seq_acc(reading, record.text)
                row[f"{mode}/ned"] = M.ned(reading, record.text)
            rows.append(row)
            if (index + 1 - args.skip) % 16 == 0:
                print(f"bench {index + 1 - args.skip}/{args.limit}", flush=True)

    keys = ("edge_gap", "colour_shift", "contrast", "ink_error", "seq_acc_ci", "ned")
    print("| regions | paste-back | " + " | ".join(keys) + " |")
    print("| --- | --- |" + " ---: |" * len(keys))
    for kind in ("photo", "bench"):
        part = [r for r in rows if r["kind"] == kind]
        if not part:
            continue
        for mode in BLEND_MODES:
            cells = []
            for k in keys:
                vals = [r[f"{mode}/{k}"] for r in part if f"{mode}/{k}" in r]
                cells.append(f"{np.median(vals):.3f} (mean {np.mean(vals):.3f})" if vals and k != "seq_acc_ci"
                             else (f"{100 * np.mean(vals):.1f} %" if vals else "–"))
            print(f"| {kind} ({len(part)}) | {mode} | " + " | ".join(cells) + " |")
    for r in rows:
        if r["kind"] == "photo":
            print(r["name"], {k: round(v, 3) for k, v in r.items() if "/" in k})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    if args.picture and panels:
        from dreamtext.visualize import text_strip

        width = max(p.shape[1] for p in panels)
        scale = min(1.0, 1500 / width)
        rows_pic = []
        for p in panels:
            h, w = p.shape[:2]
            img = np.asarray(Image.fromarray(p).resize((int(w * scale), int(h * scale)), Image.LANCZOS))
            rows_pic.append(np.pad(img, ((0, 4), (0, int(width * scale) - img.shape[1]), (0, 0)),
                                   constant_values=255))
        caption = text_strip("input  |  " + "  |  ".join(f"{m} paste-back" for m in BLEND_MODES)
                             + "  (same generated crops)",
                             rows_pic[0].shape[1], height=22)
        Image.fromarray(np.concatenate([caption, *rows_pic])).save(args.picture, quality=90)
        print("wrote", args.picture)


if __name__ == "__main__":
    main()
