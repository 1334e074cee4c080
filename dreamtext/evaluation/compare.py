"""Two evaluation runs compared record by record: the paired test a new model version needs.

``dreamtext eval`` writes one ``samples.csv`` row per record (``index``, ``target``, ``seq_acc_ci``,
``ned``, ...). Two runs of the same task on the same records (same split, seeds and targets) differ
only by the model or its settings, so a record-by-record comparison is far more sensitive than the two
means: SeqAcc by the exact two-sided sign test over the records only one run reads right, NED by the
mean of the per-record differences with a seeded bootstrap interval.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..errors import DatasetError

NEEDED_COLUMNS = ("index", "target", "seq_acc_ci", "ned")
# Per-record numbers compared pairwise when both runs have them (the style task): lower is better.
PAIRED_LOWER_IS_BETTER = ("text_color_de", "background_de")


def sign_test(better: int, worse: int) -> float:
    """Two-sided exact sign test over the discordant pairs (records right in one run only)."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(better, worse) + 1)) / 2**n
    return min(1.0, 2 * tail)


def load_rows(run: str | Path) -> dict[int, dict]:
    """``{index: row}`` of an eval run's ``samples.csv`` (the run folder or the file itself)."""
    path = Path(run)
    if path.is_dir():
        path = path / "samples.csv"
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: give a `dreamtext eval --out` folder or its samples.csv")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in NEEDED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path} lacks the column(s) {', '.join(missing)}: not a `dreamtext eval` samples.csv")
        rows = {}
        for line, row in enumerate(reader, start=2):
            try:
                rows[int(row["index"])] = {**row, "seq_acc_ci": int(float(row["seq_acc_ci"])), "ned": float(row["ned"])}
            except ValueError as e:
                raise DatasetError(f"{path} line {line}: {e}") from None
    return rows


def compare_runs(run_a: str | Path, run_b: str | Path, boot: int = 4000, seed: int = 0) -> dict:
    """Paired comparison of run B against run A over the records both hold.

    Returns ``n``; ``seq_acc_a`` / ``seq_acc_b`` (fractions); ``only_a`` / ``only_b`` (records read right in
    one run only) and ``sign_p``; ``ned_a`` / ``ned_b`` and ``ned_diff`` (mean of B − A per record) with
    ``ned_diff_ci`` (95 % bootstrap over records, ``boot`` resamples of seed ``seed``).
    Raises :class:`DatasetError` when the runs share no record or ask for different words on one.
    """
    a, b = load_rows(run_a), load_rows(run_b)
    idx = sorted(set(a) & set(b))
    if not idx:
        raise DatasetError(f"{run_a} and {run_b} share no record index")
    clash = [i for i in idx if a[i]["target"] != b[i]["target"]]
    if clash:
        i = clash[0]
        raise DatasetError(f"record {i} asks for {a[i]['target']!r} in {run_a} but {b[i]['target']!r} in {run_b}: "
                           f"not the same task and split ({len(clash)} record(s) differ)")
    right_a = np.array([a[i]["seq_acc_ci"] for i in idx], bool)
    right_b = np.array([b[i]["seq_acc_ci"] for i in idx], bool)
    ned_a, ned_b = np.array([a[i]["ned"] for i in idx]), np.array([b[i]["ned"] for i in idx])
    diff = ned_b - ned_a
    means = np.random.default_rng(seed).choice(diff, size=(boot, len(diff))).mean(1)
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    paired = {}
    for key in PAIRED_LOWER_IS_BETTER:  # the style task's colour errors, where both runs have them
        va, vb = _floats(a, idx, key), _floats(b, idx, key)
        ok = ~(np.isnan(va) | np.isnan(vb))
        if ok.any():
            paired[key] = {"n": int(ok.sum()), "median_a": float(np.median(va[ok])), "median_b": float(np.median(vb[ok])),
                           "lower_in_b": int((vb[ok] < va[ok]).sum()), "lower_in_a": int((va[ok] < vb[ok]).sum()),
                           "sign_p": sign_test(int((vb[ok] < va[ok]).sum()), int((va[ok] < vb[ok]).sum()))}
    return {
        **({"paired": paired} if paired else {}),
        "n": len(idx), "seq_acc_a": float(right_a.mean()), "seq_acc_b": float(right_b.mean()),
        "only_a": only_a, "only_b": only_b, "sign_p": sign_test(only_b, only_a),
        "ned_a": float(ned_a.mean()), "ned_b": float(ned_b.mean()),
        "ned_diff": float(diff.mean()), "ned_diff_ci": (float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))),
    }


def _floats(rows: dict[int, dict], idx: list[int], key: str) -> np.ndarray:
    def value(row):
        try:
            return float(row.get(key) or "nan")
        except ValueError:
            return float("nan")

    return np.array([value(rows[i]) for i in idx], np.float64)


def comparison_line(c: dict) -> str:
    """One line of what :func:`compare_runs` found (and, for the style task, one per colour metric)."""
    lo, hi = c["ned_diff_ci"]
    line = (f"{c['n']} records: SeqAcc A {100 * c['seq_acc_a']:.1f} % → B {100 * c['seq_acc_b']:.1f} % "
            f"(right only in A {c['only_a']}, only in B {c['only_b']}; sign test p = {c['sign_p']:.2g}); "
            f"NED {c['ned_a']:.3f} → {c['ned_b']:.3f} (B − A {c['ned_diff']:+.3f}, 95 % CI [{lo:+.3f}, {hi:+.3f}])")
    for key, p in c.get("paired", {}).items():
        line += (f"\n  {key}: median A {p['median_a']:.2f} → B {p['median_b']:.2f} over {p['n']} records (lower in B "
                 f"on {p['lower_in_b']}, in A on {p['lower_in_a']}; sign test p = {p['sign_p']:.2g})")
    return line
