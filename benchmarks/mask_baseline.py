"""What a character-mask mIoU is worth: two baselines that know no letters.

Every ``mask mIoU`` the evaluation reports is compared against these, scored
with the same ``metrics.char_mask_miou`` on the same records:

* ``even slices``: the word's quad cut into n equal slices along its reading
  direction (character i gets slice i), i.e. what a model that only learned
  "the i-th token lives i/n of the way along the box" would predict;
* ``whole region``: every character gets the whole quad (uniform attention).

    .venv/bin/python benchmarks/mask_baseline.py --data bench --limit 500
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from dreamtext.config import load_config
from dreamtext.data.sources import open_source
from dreamtext.metrics import char_mask_miou


def quad_coordinates(quad: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) ∈ [0, 1]² of every pixel in the quad's own frame (u along the reading direction): two (H, W)."""
    unit = np.float32([[0, 0], [1, 0], [1, 1], [0, 1]])
    to_unit = cv2.getPerspectiveTransform(np.float32(quad), unit)
    ys, xs = np.mgrid[0:hw[0], 0:hw[1]].astype(np.float32)
    pts = np.stack([xs + 0.5, ys + 0.5], -1).reshape(-1, 1, 2)  # pixel centres
    uv = cv2.perspectiveTransform(pts, to_unit).reshape(hw[0], hw[1], 2)
    return uv[..., 0], uv[..., 1]


def baseline_masks(quad: np.ndarray, n: int, hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """Both baselines as bool (n, H, W)."""
    u, v = quad_coordinates(quad, hw)
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    slot = np.clip(np.floor(u * n), 0, n - 1).astype(np.int64)
    slices = np.stack([inside & (slot == i) for i in range(n)])
    return {"even slices": slices, "whole region": np.repeat(inside[None], n, axis=0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="bench")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()
    source = open_source(args.data, load_config(args.preset), split="bench")
    scores: dict[str, list[float]] = {}
    for i, record in enumerate(source):
        if i >= args.limit:
            break
        if record.char_masks is None:
            continue
        masks = baseline_masks(record.word_quad, len(record.text), record.image.shape[:2])
        for name, m in masks.items():
            scores.setdefault(name, []).append(char_mask_miou(m, record.char_masks))
    print(json.dumps({"data": args.data, "records": len(next(iter(scores.values()), [])),
                      **{name: round(float(np.mean(s)), 4) for name, s in scores.items()}}))


if __name__ == "__main__":
    main()
