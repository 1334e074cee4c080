"""How well the evaluation's OCR reads perfect text: the ceiling of every SeqAcc we report.

Renders ``--n`` random mixed-case alphanumeric words (3–10 characters, Debian
fonts, black on white) at each size and reads them back with the recogniser.

    .venv/bin/python benchmarks/ocr_ceiling.py --n 500 [--ocr rapidocr]
"""

from __future__ import annotations

import argparse
import json
import time

from dreamtext.ocr import clean_render_accuracy, make_recognizer, render_clean_word, system_fonts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ocr", default="rapidocr")
    args = parser.parse_args()
    rec = make_recognizer(args.ocr)
    rec.read([render_clean_word("warm", system_fonts()[0], (32, 128))])  # load the model before timing
    for hw in [(32, 128), (64, 256)]:
        t0 = time.perf_counter()
        res = clean_render_accuracy(rec, args.n, hw, seed=args.seed)
        res["ms_per_crop"] = 1000 * (time.perf_counter() - t0) / args.n
        res["misreads"] = [e for e in res.pop("examples") if e["read"].lower() != e["text"].lower()]
        print(json.dumps(res))


if __name__ == "__main__":
    main()
