"""``dreamtext compare``: two evaluation runs of one task compared record by record."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two eval runs record by record (sign test, NED interval)",
                       description="Compare two `dreamtext eval` runs of the same task on the same records "
                                   "(e.g. two model versions): SeqAcc with the exact sign test over the records "
                                   "only one run reads right, NED by the per-record difference with a 95 % "
                                   "bootstrap interval. Pairs of runs may follow: A B [A2 B2 ...].")
    p.add_argument("runs", nargs="+", metavar="RUN", help="eval output folders (or their samples.csv), in pairs A B")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..evaluation.compare import compare_runs, comparison_line

    if len(args.runs) % 2:
        raise ConfigError(f"give the runs in pairs A B; got {len(args.runs)}")
    for a, b in zip(args.runs[::2], args.runs[1::2]):
        print(f"A = {a}\nB = {b}\n  " + comparison_line(compare_runs(a, b)))
    return 0
