"""What a character-mask mIoU is worth: two baselines that know no letters.

Scored with the evaluation's own ``metrics.char_mask_miou`` on the same records:

* ``even slices`` (``metrics.even_slice_masks``; ``dreamtext eval`` reports it
  beside every mask mIoU as ``mask_miou_slices``): the word's quad cut into n
  equal slices along its reading direction;
* ``whole region``: every character gets the whole quad (uniform attention).

    .venv/bin/python benchmarks/mask_baseline.py --data bench --limit 500
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from dreamtext.config import load_config
from dreamtext.data.sources import open_source
from dreamtext.metrics import char_mask_miou, even_slice_masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="bench")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()
    source = open_source(args.data, load_config(args.preset), split="bench")
    slices, whole = [], []
    for i, record in enumerate(source):
        if i >= args.limit:
            break
        if record.char_masks is None:
            continue
        masks = even_slice_masks(record.word_quad, len(record.text), record.image.shape[:2])
        slices.append(char_mask_miou(masks, record.char_masks))
        whole.append(char_mask_miou(masks.any(0, keepdims=True).repeat(len(masks), 0), record.char_masks))
    print(json.dumps({"data": args.data, "records": len(slices), "even slices": round(float(np.mean(slices)), 4),
                      "whole region": round(float(np.mean(whole)), 4)}))


if __name__ == "__main__":
    main()
