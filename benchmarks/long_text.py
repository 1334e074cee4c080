"""Long text in one region (DESIGN §14): the layout picture for the docs, and the time per region by chunk count.

    python benchmarks/long_text.py --picture docs/img/phrase_layout.png
    OMP_NUM_THREADS=1 python benchmarks/long_text.py --time --repeats 3     # 1, 2 and 4 chunks, shipped model

``--picture``: a phrase laid out on a slanted quad: the region, each chunk's sub-quad (its share of the line
by rendered width, cut along the top and bottom edges) and the cell its paste-back may change.
``--time``: median seconds of ``DreamTextPipeline.edit`` for one region holding 1, 2 and 4 chunks of
6-letter words (default sampling), on a sample photograph; one JSON line per chunk count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

QUAD = np.array([[40, 60], [600, 150], [592, 230], [30, 138]], np.float32)
PHRASE = "Always wash fruit and greens"


def picture(out: str) -> None:
    from PIL import Image, ImageDraw

    from dreamtext.edit.layout import chunk_cells, layout, sub_quad
    from dreamtext.io_utils import atomic_save_image
    from dreamtext.visualize import char_colors

    chunks = layout(PHRASE, 12)
    canvas = Image.new("RGB", (640, 300), (245, 245, 240))
    draw = ImageDraw.Draw(canvas, "RGBA")
    colors = char_colors(len(chunks))
    for k, (chunk, cell) in enumerate(zip(chunks, chunk_cells(QUAD, chunks, reach=12.0))):
        c = tuple(int(v) for v in colors[k])
        draw.polygon([tuple(p) for p in cell.tolist()], fill=c + (40,))
        sub = sub_quad(QUAD, *chunk.span)
        draw.polygon([tuple(p) for p in sub.tolist()], outline=c + (255,), width=2)
        centre = sub.mean(0)
        draw.text((centre[0] - 3 * len(chunk.text), centre[1] - 6), chunk.text, fill=(20, 20, 20))
    draw.polygon([tuple(p) for p in QUAD.tolist()], outline=(0, 0, 0), width=1)
    draw.text((10, 10), f"'{PHRASE}' on a slanted quad: {len(chunks)} chunks (outlined), their paste cells "
                        "(tinted)", fill=(0, 0, 0))
    atomic_save_image(out, np.asarray(canvas))
    print(f"wrote {out}")


def timing(repeats: int) -> None:
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.io_utils import read_image_rgb
    from dreamtext.model.checkpoint import SHIPPED_MODEL_DIR

    pipe = DreamTextPipeline.from_pretrained()
    image = read_image_rgb(SHIPPED_MODEL_DIR.parent / "samples" / "brick.jpg")
    h, w = image.shape[:2]
    box = (0.1 * w, 0.4 * h, 0.9 * w, 0.6 * h)
    for words in (1, 2, 4):
        text = " ".join(["Garden", "Street", "Market", "Corner"][:words])
        pipe.edit(image, [box], [text], seed=0)  # warm-up
        seconds = []
        for r in range(repeats):
            t0 = time.perf_counter()
            pipe.edit(image, [box], [text], seed=r)
            seconds.append(time.perf_counter() - t0)
        print(json.dumps({"chunks": words, "text": text, "median_s": statistics.median(seconds),
                          "repeats": repeats}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--picture", default=None, help="write the layout picture here")
    p.add_argument("--time", action="store_true", help="time 1, 2 and 4 chunks with the shipped model")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if args.picture:
        picture(args.picture)
    if args.time:
        timing(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
