"""``dreamtext data``: render synthetic shards and preview any data source."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="synthetic data shards and data previews",
                              description="Render synthetic scene-text shards, or draw the ground truth of any source.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")

    s = sub.add_parser("synth", help="render N synthetic records into tar shards (resumable)")
    s.add_argument("--out", required=True, help="output directory of shard-NNNNNN.tar files")
    s.add_argument("--num", type=int, required=True, help="number of records")
    s.add_argument("--shard-size", type=int, default=1000, help="records per shard (default 1000)")
    s.add_argument("--workers", type=int, default=1, help="processes rendering shards in parallel")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--preset", default="tiny", help="config preset giving max_len and the word sources")
    s.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    s.set_defaults(func=_synth)

    v = sub.add_parser("preview", help="draw word/char quads and char masks over samples of a source")
    v.add_argument("source", help="synth, bench, shards:DIR, synthtext:PATH, textseg:DIR, icdar13:DIR, laion_ocr:DIR")
    v.add_argument("--out", required=True, help="PNG to write")
    v.add_argument("--num", type=int, default=16, help="records to draw")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--preset", default="tiny")
    v.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    v.add_argument("--edit-pairs", action="store_true",
                   help="synthetic sources: draw each scene as an edit pair (data.edit_pairs' training samples)")
    v.set_defaults(func=_preview)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _cfg(args):
    from ..config import load_config

    return load_config(args.preset, overrides=args.set or None)


def _synth(args: argparse.Namespace) -> int:
    from ..data.shards import write_synth_shards

    summary = write_synth_shards(args.out, _cfg(args), num=args.num, shard_size=args.shard_size,
                                 workers=args.workers, seed=args.seed, progress=True)
    print(f"{summary['written']} shard(s) written, {summary['skipped']} already complete, "
          f"{summary['num']} records in {args.out}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    import itertools

    from ..data.preview import preview_grid
    from ..data.sources import SynthSource, open_source
    from ..errors import DatasetError
    from ..io_utils import atomic_save_image

    if args.num < 1:
        raise DatasetError("--num must be at least 1")
    cfg = _cfg(args)
    src = open_source(args.source, cfg, seed=args.seed)
    if args.edit_pairs:
        if not isinstance(src, SynthSource):
            raise DatasetError(f"--edit-pairs needs a synthetic source (synth, synth:N, bench), not {args.source!r}")
        records = [src.generator.sample_pair(i) for i in range(args.num)]
    else:
        records = list(itertools.islice(iter(src), args.num))
    if not records:
        raise DatasetError(f"source {args.source!r} yielded no records")
    atomic_save_image(args.out, preview_grid(records, cfg))
    skipped = getattr(src, "skipped", None)
    if skipped is not None and skipped.total:
        print(skipped.summary())
    print(f"wrote {args.out} ({len(records)} records)")
    return 0
