"""Whole-split quality of each shipped model version against the training samples it had seen.

    .venv/bin/python tools/plot_versions.py docs/runs/versions.json docs/img/shipped_versions.png

``versions.json`` holds, per version, the samples seen and the whole-split numbers of
``dreamtext eval --task recon|edit`` (500 ``bench`` records, the model's default sampling); the
numbers of versions 4 and 5 were copied from BENCHMARKS.md (their run folders are gone), later ones
from the ``results.json`` kept beside it in ``docs/runs/``. The x axis is logarithmic. Dashed: the
saturating curve y = c − a·N^(−b) through the last three versions of each SeqAcc (three points, three
parameters: an exact fit, a reading of the bend, not a forecast), drawn out to 10M samples; its
asymptote c is in the legend and printed.
"""
import json
import sys

import numpy as np


def saturating_fit(n, y):
    """(a, b, c) of y = c − a·n^(−b) through three points (n ascending), or None when the points do not
    bend that way (the gains must shrink faster than the log-spacing: y rising, slowing). Bisection on b."""
    n, y = np.asarray(n[-3:], float), np.asarray(y[-3:], float)
    if len(n) < 3 or not (y[1] > y[0] and y[2] >= y[1]):
        return None
    ratio = (y[1] - y[0]) / max(y[2] - y[1], 1e-12)

    def excess(b):
        return (n[0] ** -b - n[1] ** -b) / (n[1] ** -b - n[2] ** -b) - ratio

    lo, hi = 1e-4, 50.0
    if excess(lo) * excess(hi) > 0:
        return None
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(lo) * excess(mid) > 0 else (lo, mid)
    b = 0.5 * (lo + hi)
    a = (y[1] - y[0]) / (n[0] ** -b - n[1] ** -b)
    return a, b, y[0] + a * n[0] ** -b


def main(src: str, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    doc = json.load(open(src))
    versions = doc["versions"]
    samples = [v["samples_seen"] for v in versions]
    fig, (ax_seq, ax_mask) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in (("recon_seq_acc_ci", "reconstruction SeqAcc"), ("edit_seq_acc_ci", "editing SeqAcc")):
        pts = [(s, v[key]) for s, v in zip(samples, versions) if v.get(key) is not None]
        line, = ax_seq.plot([p[0] for p in pts], [100 * p[1] for p in pts], "o-", label=label)
        fit = saturating_fit([p[0] for p in pts], [p[1] for p in pts])
        if fit is not None:
            a, b, c = fit
            grid = np.geomspace(pts[-3][0], 1e7, 60)
            ax_seq.plot(grid, 100 * (c - a * grid ** -b), "--", c=line.get_color(), lw=1,
                        label=f"c − a·N^−b through the last 3: levels off at {100 * c:.0f} %")
            print(f"{label}: c − a·N^-b with b = {b:.2f}, c = {100 * c:.1f} %")
    ax_seq.axhline(100 * doc["ocr_ceiling_seq_acc_ci"], ls=":", c="grey", label="OCR ceiling (ground-truth crops)")
    ax_seq.axhline(80, ls="--", c="C0", lw=0.8, label="target recon ≥ 80 %")
    ax_seq.axhline(70, ls="--", c="C1", lw=0.8, label="target edit ≥ 70 %")
    ax_seq.set_ylabel("SeqAcc, case-insensitive (%)")
    ax_seq.set_ylim(0, 100)
    pts = [(s, v["recon_mask_miou"]) for s, v in zip(samples, versions) if v.get("recon_mask_miou") is not None]
    ax_mask.plot([p[0] for p in pts], [p[1] for p in pts], "o-", c="C2", label="predicted masks (attention)")
    ax_mask.axhline(doc["mask_miou_slices"], ls=":", c="grey", label="letter-blind even slices")
    ax_mask.axhline(0.5, ls="--", c="C2", lw=0.8, label="target ≥ 0.5")
    ax_mask.set_ylabel("character-mask mIoU, reconstruction")
    ax_mask.set_ylim(0, 1)
    ax_mask.set_xlim(ax_seq.get_xlim())  # the same span as the fitted curves
    for ax in (ax_seq, ax_mask):
        ax.set_xscale("log")
        ax.set_xlabel("training samples seen")
        ax.legend(fontsize=8, loc="upper left")
        for s, v in zip(samples, versions):
            ax.annotate(v["name"], (s, ax.get_ylim()[0]), textcoords="offset points", xytext=(0, 4),
                        ha="center", fontsize=8)
    fig.suptitle("shipped tiny model, whole bench split, by version")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
