"""Every data source behind one spec string (DESIGN §6).

``open_source(spec, cfg)`` understands:
  ``synth``            the generator, endless (``seed`` picks the stream)
  ``bench-long``       BENCH_LONG_SIZE records of held-out phrases and long words (13–32 characters)
  ``bench``            the fixed benchmark split: BENCH_SIZE synthetic records of held-out
                       English words and random strings from their own seed — identical on
                       every run for a given ``cfg.max_len``
  ``shards:DIR``       tar shards written by ``dreamtext data synth``
  ``synthtext:PATH``   SynthText ``gt.mat`` (images beside it)
  ``textseg:DIR``      TextSeg (``image/``, ``annotation/``)
  ``icdar13:DIR``      ICDAR 2013 focused scene text (images + ``gt_*.txt``)
  ``laion_ocr:DIR``    LAION-OCR as released by TextDiffuser/MARIO (``*/image.jpg``, ``ocr.txt``, ``charseg.npy``)

The trainer reads any of them through ``dreamtext.train_utils.IndexedSamples`` (sample ``i`` a pure function
of the seed and ``i``, so a killed run resumes exactly).
"""

from __future__ import annotations

import itertools
import logging
from typing import Iterator

from ..errors import DatasetError
from .indexed import SkipLog
from .record import TextRecord
from .render import SynthGenerator, SynthParams

log = logging.getLogger("dreamtext.data")

BENCH_SEED = 0xBE7C4  # the benchmark's own seed stream, never used for training
BENCH_SIZE = 500
BENCH_LONG_SEED = 0xB10C5  # the long-text benchmark's own seed stream
BENCH_LONG_SIZE = 300


class SynthSource:
    """The generator as a source: endless (``num=None``) or its first ``num`` records."""

    def __init__(self, cfg, seed: int = 0, num: int | None = None, split: str = "train", name: str = "synth",
                 text_kind: str = "word"):
        self.name = name
        self.generator = SynthGenerator(SynthParams.from_config(cfg, split=split, text_kind=text_kind), seed,
                                        source=name)
        self.num = num
        self.finite = num is not None
        self.skipped = SkipLog(self.name)

    def __len__(self) -> int:
        if self.num is None:
            raise TypeError("an endless synth source has no length")
        return self.num

    def iter_part(self, part: int, num_parts: int, order=None) -> Iterator[TextRecord]:
        """Indices ``part, part + num_parts, ...`` (of ``order`` when given)."""
        if order is not None:
            idx = order[part::num_parts]
        elif self.finite:
            idx = range(part, self.num, num_parts)
        else:
            idx = itertools.count(part, num_parts)
        for i in idx:
            yield self.generator.sample(int(i))

    def __iter__(self) -> Iterator[TextRecord]:
        return self.iter_part(0, 1)


def bench_source(cfg) -> SynthSource:
    """The fixed benchmark split (held-out words, own seed)."""
    return SynthSource(cfg, seed=BENCH_SEED, num=BENCH_SIZE, split="bench", name="bench")


def _synth(arg: str, cfg, split: str, seed: int, strict: bool):
    if arg and not (arg.isdigit() and int(arg) > 0):
        raise DatasetError(f"'synth:N' needs a positive record count N, got {arg!r}")
    return SynthSource(cfg, seed=seed, num=int(arg) if arg else None, split=split)


def _bench_long(arg: str, cfg, split: str, seed: int, strict: bool):
    """Phrases and long words, 13–32 characters, held-out words (DESIGN §14)."""
    return SynthSource(cfg, seed=BENCH_LONG_SEED, num=BENCH_LONG_SIZE, split="bench", name="bench-long",
                       text_kind="long")


def _reader(module: str, name: str, takes_max_len: bool = True):
    """A builder of the file reader ``name`` of ``dreamtext.data.<module>``, imported when it is used."""
    def build(arg: str, cfg, split: str, seed: int, strict: bool):
        import importlib

        reader = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        return reader(arg, max_len=cfg.max_len, strict=strict) if takes_max_len else reader(arg, strict=strict)

    build.needs_path = True
    return build


# kind → builder(arg, cfg, split, seed, strict); the kinds with `needs_path` read files at `kind:PATH`.
SOURCE_BUILDERS = {
    "synth": _synth,
    "bench": lambda arg, cfg, split, seed, strict: bench_source(cfg),
    "bench-long": _bench_long,
    "shards": _reader("shards", "ShardReader", takes_max_len=False),
    "synthtext": _reader("synthtext", "SynthTextReader"),
    "textseg": _reader("textseg", "TextSegReader"),
    "icdar13": _reader("icdar13", "ICDAR13Reader"),
    "laion_ocr": _reader("laion_ocr", "LaionOCRReader"),
}
SOURCE_KINDS = tuple(SOURCE_BUILDERS)  # the kinds a spec may name, in the table's order


def open_source(spec: str, cfg, split: str = "train", seed: int = 0, strict: bool = False):
    """A record source from a spec string (module doc). Finite sources have ``len()``."""
    if not isinstance(spec, str) or not spec:
        raise DatasetError(f"data source must be a string such as 'synth' or 'shards:DIR', got {spec!r}")
    kind, _, arg = spec.partition(":")
    build = SOURCE_BUILDERS.get(kind)
    if build is None:
        raise DatasetError(f"unknown data source {spec!r}; kinds: {', '.join(SOURCE_KINDS)}")
    if getattr(build, "needs_path", False) and not arg:
        raise DatasetError(f"data source {kind!r} needs a path: '{kind}:PATH'")
    return build(arg, cfg, split, seed, strict)
