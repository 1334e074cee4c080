"""The paired edit benchmark's split (DESIGN §13): same-style pairs at the photo's own scale.

Record ``i`` is a pair from the synthetic generator (``SynthGenerator.sample_pair``): the *source* scene
holds an old word, the *target* is the same scene — background, font, size, colour, effects, warp, noise —
drawn with a new word of up to ``PAIR_LENGTH_DELTA`` more or fewer characters, fitted into the old word's
box. The pipeline is given the source, the box and the new word; the target is the ground truth of the edit.

Words come from the held-out ``bench`` word split; the seed stream is its own (``STYLE_SEED``), so nothing
here is ever a training sample. Scenes are drawn at three font-size ranges, record ``i`` in range ``i mod 3``
(``FONT_RANGES``), so the words span about 16 to 160 pixels in height and the model's 32-pixel window is
often upscaled, as on real photographs; the report groups the records by measured word height
(``HEIGHT_BUCKETS``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import numpy as np

from .record import TextRecord

STYLE_SEED = 0x57B1E  # the paired split's own seed stream, never used for training
STYLE_SIZE = 500  # pairs in the split (``--limit`` evaluates the first N)
PAIR_LENGTH_DELTA = 3
# Font sizes (scene pixels) of the three scale ranges: word heights of roughly 16–32, 32–64 and 64–160 px.
FONT_RANGES = ((18, 36), (38, 76), (80, 170))
HEIGHT_BUCKETS = ((16, 32), (32, 64), (64, 160))


def height_bucket(height: float) -> str:
    """The report's bucket of a word ``height`` pixels tall: "16-32", "32-64", "64-160", or "<16" / "160+"."""
    for lo, hi in HEIGHT_BUCKETS:
        if lo <= height < hi:
            return f"{lo}-{hi}"
    return f"<{HEIGHT_BUCKETS[0][0]}" if height < HEIGHT_BUCKETS[0][0] else f"{HEIGHT_BUCKETS[-1][1]}+"


class StylePairs:
    """The paired split: ``pair(i)`` → (source, target) TextRecords; ``len`` = ``num``.

    ``load(i)`` and ``iter_part`` give the sources (what an evaluation edits), ``target(i)`` the ground truth;
    the last few pairs are kept, so asking for both renders each pair once.
    """

    def __init__(self, cfg, num: int = STYLE_SIZE, seed: int = STYLE_SEED, split: str = "bench"):
        from .render import SynthGenerator, SynthParams

        self.num, self.seed = int(num), int(seed)
        # split "train" with another seed: the same kind of pairs from the training words (the detail refiner's)
        self.generators = [SynthGenerator(SynthParams.from_config(cfg, split=split, font_px=fp), seed=seed + k,
                                          source="style") for k, fp in enumerate(FONT_RANGES)]
        self._cache: OrderedDict[int, tuple[TextRecord, TextRecord]] = OrderedDict()

    def __len__(self) -> int:
        return self.num

    def pair(self, i: int) -> tuple[TextRecord, TextRecord]:
        i = int(i)
        if not 0 <= i < self.num:
            raise IndexError(f"pair {i} is outside the split's {self.num}")
        if i not in self._cache:
            gen = self.generators[i % len(self.generators)]
            self._cache[i] = gen.sample_pair(i // len(self.generators), length_delta=PAIR_LENGTH_DELTA)
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return self._cache[i]

    def load(self, i: int) -> TextRecord:
        return self.pair(i)[0]

    def target(self, i: int) -> TextRecord:
        return self.pair(i)[1]

    def iter_part(self, part: int, num_parts: int, order: np.ndarray | None = None) -> Iterator[TextRecord]:
        for i in range(part, self.num, num_parts):
            yield self.load(int(order[i]) if order is not None else i)
