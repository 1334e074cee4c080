"""Which letters does the model get wrong? Per-glyph error rates of `dreamtext eval` runs.

Reads the per-record `samples.csv` of one or more evaluation folders (recon and/or edit), keeps the records
whose ground-truth crop the OCR reads right (so a miss is the model's, not the OCR's), aligns each target
with the OCR's reading (difflib, case-insensitive) and counts, per glyph of the target (case kept), how
often it was not matched. The glyphs are ranked by their share of the training stream (the generator's
word mix, `sample_word` with `--glyph-balance`) and cut into four groups of equal count, rarest first.

    python benchmarks/letter_errors.py docs/runs/ship-v6/eval-recon docs/runs/ship-v6/eval-edit
    python benchmarks/letter_errors.py RUN_A_DIRS... --versus RUN_B_DIRS...   # a second model, same table
"""

from __future__ import annotations

import argparse
import collections
import difflib

import numpy as np


def glyph_errors(folders: list[str]) -> tuple[collections.Counter, collections.Counter, collections.Counter]:
    """(occurrences, misses) per target glyph and (target, read) confusions of equal-length replacements."""
    from dreamtext.evaluation.compare import load_rows

    seen, missed, confused = collections.Counter(), collections.Counter(), collections.Counter()
    for folder in folders:
        for row in load_rows(folder).values():  # checks the file and its columns
            if row["ocr_ceiling_seq_acc_ci"] != "1":
                continue
            target, read = row["target"], row["ocr"]
            match = difflib.SequenceMatcher(None, target.lower(), read.lower(), autojunk=False)
            hit = np.zeros(len(target), bool)
            for a, _, n in match.get_matching_blocks():
                hit[a:a + n] = True
            for c, ok in zip(target, hit):
                seen[c] += 1
                missed[c] += not ok
            for op, i1, i2, j1, j2 in match.get_opcodes():
                if op == "replace" and i2 - i1 == j2 - j1:
                    confused.update(zip(target[i1:i2].lower(), read[j1:j2].lower()))
    return seen, missed, confused


def training_shares(n_words: int, max_len: int, words: str, glyph_balance: float) -> dict[str, float]:
    """Each glyph's share of the letters the generator writes (``n_words`` words of seed 0)."""
    from dreamtext.data.words import sample_word

    rng = np.random.default_rng(0)
    counts = collections.Counter(c for _ in range(n_words) for c in sample_word(rng, max_len, words,
                                                                               glyph_balance=glyph_balance))
    total = sum(counts.values())
    return {c: n / total for c, n in counts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="dreamtext eval output folders (each with samples.csv)")
    ap.add_argument("--versus", nargs="*", default=[], help="folders of a second model, for a side-by-side column")
    ap.add_argument("--min-count", type=int, default=12, help="glyphs seen fewer times are left out")
    ap.add_argument("--words", default="english+random", help="the generator's word mix (data.words)")
    ap.add_argument("--glyph-balance", type=float, default=0.0, help="data.glyph_balance of the training stream")
    ap.add_argument("--max-len", type=int, default=12)
    ap.add_argument("--stream-words", type=int, default=100_000)
    args = ap.parse_args()

    seen, missed, confused = glyph_errors(args.folders)
    other = glyph_errors(args.versus) if args.versus else None
    shares = training_shares(args.stream_words, args.max_len, args.words, args.glyph_balance)
    glyphs = sorted((c for c in seen if seen[c] >= args.min_count), key=lambda c: shares.get(c, 0.0))
    print(f"{sum(seen.values())} glyphs of {len(args.folders)} run(s) whose ground truth the OCR reads; "
          f"overall miss rate {sum(missed.values()) / max(1, sum(seen.values())):.3f}; "
          f"{len(glyphs)} glyphs seen ≥ {args.min_count} times\n")
    head = "| training share (rarest first) | glyphs | mean share | miss rate |" + (" miss rate, --versus |" if other else "")
    print(head)
    print("| --- | --- | ---: | ---: |" + (" ---: |" if other else ""))
    for k, group in enumerate(np.array_split(np.array(glyphs, dtype=object), 4)):
        group = list(group)
        rate = sum(missed[c] for c in group) / sum(seen[c] for c in group)
        cell = ""
        if other:
            n = sum(other[0][c] for c in group)
            cell = f" {sum(other[1][c] for c in group) / n:.3f} |" if n else " – |"
        print(f"| quarter {k + 1} | {''.join(group)} | {np.mean([shares.get(c, 0.0) for c in group]):.4f} | "
              f"{rate:.3f} |{cell}")
    f = np.log([max(shares.get(c, 0.0), 1e-6) for c in glyphs])
    e = np.array([missed[c] / seen[c] for c in glyphs])
    print(f"\ncorrelation of log training share and miss rate over the {len(glyphs)} glyphs: "
          f"{np.corrcoef(f, e)[0, 1]:.2f}")
    worst = sorted(glyphs, key=lambda c: -missed[c] / seen[c])[:12]
    print("worst glyphs (miss rate, count):", ", ".join(f"{c} {missed[c] / seen[c]:.2f} ({seen[c]})" for c in worst))
    print("commonest confusions (target → read):",
          ", ".join(f"{a}→{b} {n}" for (a, b), n in confused.most_common(12)))


if __name__ == "__main__":
    main()
