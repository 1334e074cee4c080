"""How well the evaluation's OCR reads perfect text: the ceiling of every SeqAcc we report.

Renders ``--n`` random mixed-case alphanumeric words (3–10 characters, Debian
fonts, black on white) at 32×128 and 64×256 and reads them back; then times
the recogniser alone on 100 crops (median ms per crop).

    .venv/bin/python benchmarks/ocr_ceiling.py --n 500 [--ocr rapidocr]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from dreamtext.evaluation.ocr import clean_render_accuracy, make_recognizer, render_clean_word, system_fonts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ocr", default="rapidocr")
    args = parser.parse_args()
    rec = make_recognizer(args.ocr)
    fonts = system_fonts()
    for hw in [(32, 128), (64, 256)]:
        res = clean_render_accuracy(rec, args.n, hw, seed=args.seed)
        crops = [render_clean_word(f"Word{i}", fonts[i % len(fonts)], hw) for i in range(100)]
        rec.read(crops[:1])  # the engine loads on first use: not timed
        times = []
        for crop in crops:
            t0 = time.perf_counter()
            rec.read([crop])
            times.append(1000 * (time.perf_counter() - t0))
        res["median_ms_per_crop"] = statistics.median(times)
        res["misreads"] = [e for e in res.pop("examples") if e["read"].lower() != e["text"].lower()]
        print(json.dumps(res))


if __name__ == "__main__":
    main()
