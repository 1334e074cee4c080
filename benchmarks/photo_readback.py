"""Read the demo's edited photographs back with the evaluation's OCR: does the model write the asked words on
real photographs, not only on synthetic crops?

    for s in 0 1 2 3; do dreamtext demo --blend inpaint --seed $s --out runs/photo/v6-s$s; done
    .venv/bin/python benchmarks/photo_readback.py runs/photo/v6-s0 runs/photo/v6-s1 runs/photo/v6-s2 runs/photo/v6-s3

Each folder is one ``dreamtext demo`` output. For every sample photograph (``dreamtext/assets/samples``) the
region of each asked word is cut from ``<sample>_edited.png`` and flattened as ``dreamtext eval`` does
(``rectify_quad``), then read with PP-OCR. Prints the readings per folder, then how many regions read back
exactly (case-insensitive) and the mean case-insensitive NED over all folders.
"""
import sys

import numpy as np
from PIL import Image

from dreamtext.commands.demo import load_samples
from dreamtext.edit.regions import parse_region
from dreamtext.evaluation.metrics import ned
from dreamtext.evaluation.ocr import make_recognizer, rectify_quad


def main(folders: list[str]) -> None:
    ocr = make_recognizer("rapidocr")
    samples = load_samples()
    right, neds = 0, []
    for folder in folders:
        readings = []
        for sample in samples:
            image = np.asarray(Image.open(f"{folder}/{sample['name']}_edited.png").convert("RGB"))
            for region, text in zip(sample["regions"], sample["texts"]):
                got = ocr.read([rectify_quad(image, parse_region(region, image.shape[:2]))])[0]  # as the demo parsed it
                readings.append(f"{text}→{got!r}")
                right += got.lower() == text.lower()
                neds.append(ned(got, text))
        print(folder, " ".join(readings))
    print(f"{right} of {len(neds)} regions read back exactly (case-insensitive); mean NED {np.mean(neds):.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
