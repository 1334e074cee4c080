"""Every data source behind one spec string, and the PyTorch side (DESIGN §6).

``open_source(spec, cfg)`` understands:
  ``synth``            the generator, endless (``seed`` picks the stream)
  ``bench``            the fixed benchmark split: BENCH_SIZE synthetic records of held-out
                       English words and random strings from their own seed — identical on
                       every run for a given ``cfg.max_len``
  ``shards:DIR``       tar shards written by ``dreamtext data synth``
  ``synthtext:PATH``   SynthText ``gt.mat`` (images beside it)
  ``textseg:DIR``      TextSeg (``image/``, ``annotation/``)
  ``icdar13:DIR``      ICDAR 2013 focused scene text (images + ``gt_*.txt``)
  ``laion_ocr:DIR``    LAION-OCR as released by TextDiffuser/MARIO (``*/image.jpg``, ``ocr.txt``, ``charseg.npy``)

``ModelSampleDataset`` streams :func:`make_model_sample` dicts; each DataLoader
worker of each process (``rank`` of ``world_size``) reads a disjoint part.
"""

from __future__ import annotations

import itertools
import logging
from typing import Iterator

import numpy as np

from ..errors import DatasetError, TextError
from .indexed import SkipLog, text_problem
from .record import TextRecord
from .render import SynthGenerator, SynthParams
from .words import edit_word_for  # noqa: F401  (re-exported: the editing task's targets)

log = logging.getLogger("dreamtext.data")

BENCH_SEED = 0xBE7C4  # the benchmark's own seed stream, never used for training
BENCH_SIZE = 500
SOURCE_KINDS = ("synth", "bench", "shards", "synthtext", "textseg", "icdar13", "laion_ocr")


class SynthSource:
    """The generator as a source: endless (``num=None``) or its first ``num`` records."""

    def __init__(self, cfg, seed: int = 0, num: int | None = None, split: str = "train", name: str = "synth"):
        self.name = name
        self.generator = SynthGenerator(SynthParams.from_config(cfg, split=split), seed, source=name)
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


def open_source(spec: str, cfg, split: str = "train", seed: int = 0, strict: bool = False):
    """A record source from a spec string (module doc). Finite sources have ``len()``."""
    if not isinstance(spec, str) or not spec:
        raise DatasetError(f"data source must be a string such as 'synth' or 'shards:DIR', got {spec!r}")
    kind, _, arg = spec.partition(":")
    if kind == "synth":
        if arg and not (arg.isdigit() and int(arg) > 0):
            raise DatasetError(f"'synth:N' needs a positive record count N, got {arg!r}")
        return SynthSource(cfg, seed=seed, num=int(arg) if arg else None, split=split)
    if kind == "bench":
        return bench_source(cfg)
    if kind in ("shards", "synthtext", "textseg", "icdar13", "laion_ocr") and not arg:
        raise DatasetError(f"data source {kind!r} needs a path: '{kind}:PATH'")
    if kind == "shards":
        from .shards import ShardReader

        return ShardReader(arg, strict=strict)
    if kind == "synthtext":
        from .synthtext import SynthTextReader

        return SynthTextReader(arg, max_len=cfg.max_len, strict=strict)
    if kind == "textseg":
        from .textseg import TextSegReader

        return TextSegReader(arg, max_len=cfg.max_len, strict=strict)
    if kind == "icdar13":
        from .icdar13 import ICDAR13Reader

        return ICDAR13Reader(arg, max_len=cfg.max_len, strict=strict)
    if kind == "laion_ocr":
        from .laion_ocr import LaionOCRReader

        return LaionOCRReader(arg, max_len=cfg.max_len, strict=strict)
    raise DatasetError(f"unknown data source {spec!r}; kinds: {', '.join(SOURCE_KINDS)}")


def _torch_iterable_base():
    from torch.utils.data import IterableDataset

    return IterableDataset


class ModelSampleDataset(_torch_iterable_base()):
    """Model-ready sample dicts from any source, split across workers and processes.

    Part ``rank * num_workers + worker_id`` of ``world_size * num_workers`` goes to
    each worker, so no two workers (of any process) yield the same record. Endless
    for ``synth``; finite sources repeat (``repeat=True``) in a fresh seeded order
    each epoch. Records the model cannot take (text too long or outside the
    charset) are skipped and counted in ``self.skipped``.
    """

    def __init__(self, cfg, source=None, rank: int = 0, world_size: int = 1, seed: int = 0,
                 repeat: bool = True, split: str = "train"):
        super().__init__()
        if not 0 <= rank < world_size:
            raise DatasetError(f"rank {rank} is outside 0..{world_size - 1}")
        self.cfg = cfg
        self.spec = source if isinstance(source, str) or source is None else None
        self.source = open_source(source or cfg.data.source, cfg, split=split, seed=seed) \
            if self.spec is not None or source is None else source
        self.rank, self.world_size, self.seed, self.repeat = rank, world_size, seed, repeat
        self.skipped = SkipLog(getattr(self.source, "name", "source"))

    def _part(self) -> tuple[int, int]:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.rank * nw + wid, self.world_size * nw

    def records(self) -> Iterator[TextRecord]:
        part, num_parts = self._part()
        src = self.source
        if not getattr(src, "finite", True):
            yield from src.iter_part(part, num_parts)
            return
        if len(src) == 0:
            raise DatasetError(f"data source {getattr(src, 'name', src)!r} holds no records")
        epoch = 0
        while True:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(src)) if self.repeat else None
            yield from src.iter_part(part, num_parts, order)
            epoch += 1
            if not self.repeat:
                return

    def __iter__(self):
        from torch.utils.data import get_worker_info

        from .transforms import make_model_sample, opencv_in_forked_worker

        if get_worker_info() is not None:
            opencv_in_forked_worker()
        for rec in self.records():
            problem = text_problem(rec.text, self.cfg.max_len)
            if problem:
                self.skipped.skip(problem, f"record {rec.key!r}")
                continue
            try:
                yield make_model_sample(rec, self.cfg)
            except TextError as e:  # pragma: no cover - text_problem catches these first
                self.skipped.skip(str(e), f"record {rec.key!r}")


def make_dataloader(cfg, source=None, rank: int = 0, world_size: int = 1, seed: int = 0, batch_size: int | None = None):
    """A ``torch.utils.data.DataLoader`` of model-ready batches (``cfg.train.batch_size``, ``cfg.data.num_workers``)."""
    import torch
    from torch.utils.data import DataLoader

    ds = ModelSampleDataset(cfg, source, rank=rank, world_size=world_size, seed=seed)
    nw = cfg.data.num_workers
    return DataLoader(ds, batch_size=batch_size or cfg.train.batch_size, num_workers=nw,
                      persistent_workers=nw > 0,
                      pin_memory=torch.cuda.is_available())  # page-locked batches: the copy to the GPU is async
