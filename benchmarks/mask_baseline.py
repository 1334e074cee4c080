"""What a character-mask mIoU is worth: two baselines that know no letters.

Scored with the evaluation's own ``metrics.char_mask_miou`` on the same records:

* ``even slices`` (``metrics.even_slice_masks``; ``dreamtext eval`` reports it
  beside every mask mIoU as ``mask_miou_slices``): the word's quad cut into n
  equal slices along its reading direction;
* ``whole region``: every character gets the whole quad (uniform attention);

and one oracle that knows each letter's place exactly but not its shape:

* ``own bounding box``: character i gets the axis-aligned box of its own
  ground-truth pixels — the best any blob-shaped mask can hope for.

    .venv/bin/python benchmarks/mask_baseline.py --data bench --limit 500
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from dreamtext.config import load_config
from dreamtext.data.sources import open_source
from dreamtext.evaluation.metrics import char_mask_miou, even_slice_masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="bench")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()
    source = open_source(args.data, load_config(args.preset), split="bench")
    slices, whole, boxes = [], [], []
    for i, record in enumerate(source):
        if i >= args.limit:
            break
        if record.char_masks is None:
            continue
        masks = even_slice_masks(record.word_quad, len(record.text), record.image.shape[:2])
        slices.append(char_mask_miou(masks, record.char_masks))
        whole.append(char_mask_miou(masks.any(0, keepdims=True).repeat(len(masks), 0), record.char_masks))
        boxes.append(char_mask_miou(np.stack([bounding_box(g) for g in record.char_masks]), record.char_masks))
    print(json.dumps({"data": args.data, "records": len(slices), "even slices": round(float(np.mean(slices)), 4),
                      "whole region": round(float(np.mean(whole)), 4),
                      "own bounding box (oracle)": round(float(np.mean(boxes)), 4)}))


def bounding_box(mask: np.ndarray) -> np.ndarray:
    """bool (H, W): the axis-aligned box of ``mask``'s pixels (empty stays empty)."""
    out = np.zeros_like(mask, dtype=bool)
    ys, xs = np.nonzero(mask)
    if len(ys):
        out[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    return out


if __name__ == "__main__":
    main()
