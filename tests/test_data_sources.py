"""Sources behind spec strings, the fixed benchmark split, and the trainer's data stream over them."""

import itertools

import numpy as np
import pytest
import torch

from dreamtext.config import test as tiny_test_cfg
from dreamtext.config import tiny
from dreamtext.data.sources import BENCH_SEED, BENCH_SIZE, open_source
from dreamtext.data.words import english_words
from dreamtext.errors import DatasetError


def test_bench_is_fixed_and_held_out():
    cfg = tiny()
    a, b = open_source("bench", cfg), open_source("bench", cfg)
    assert len(a) == BENCH_SIZE >= 500
    ra, rb = list(itertools.islice(iter(a), 6)), list(itertools.islice(iter(b), 6))
    assert [r.key for r in ra] == [f"bench-{BENCH_SEED}-{i}" for i in range(6)] and ra[0].source == "bench"
    for x, y in zip(ra, rb):
        assert x.text == y.text and x.key == y.key
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.char_masks, y.char_masks)
    train = set(english_words("train"))
    texts = [r.text for r in itertools.islice(iter(open_source("bench", cfg)), 40)]
    assert not any(t.lower() in train for t in texts)
    assert any(t.lower() in set(english_words("bench")) for t in texts)
    # a different training seed never reproduces the benchmark
    assert [r.text for r in itertools.islice(iter(open_source("synth", cfg)), 6)] != [r.text for r in ra]


def test_finite_synth_source_and_len():
    src = open_source("synth:5", tiny_test_cfg(), seed=3)
    assert len(src) == 5 and [r.key for r in src] == [f"synth-3-{i}" for i in range(5)]
    with pytest.raises(TypeError):
        len(open_source("synth", tiny_test_cfg()))
    with pytest.raises(DatasetError, match="positive record count"):
        open_source("synth:ten", tiny_test_cfg())


def test_training_batches_have_every_key_and_shape():
    from dreamtext.train.utils import step_batches

    cfg = tiny_test_cfg()
    batch = next(step_batches(cfg, 0, 1, seed=0))
    B, L, (H, W) = cfg.train.batch_size, cfg.max_len, cfg.image_size
    assert batch["image"].shape == (B, 3, H, W) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (B, 1, H, W) and batch["char_masks"].shape == (B, L, H, W)
    assert batch["token_ids"].dtype == torch.int64 and batch["has_char_masks"].shape == (B,)
    assert batch["word_crop"].shape == (B, 1, *cfg.text.vis_size) and len(batch["text"]) == B
    # characters are supervised where the text has characters
    assert torch.equal(batch["char_valid"] > 0, batch["token_ids"] > 0)
    per_char = batch["char_masks"].flatten(2).sum(-1)
    assert (per_char[batch["char_valid"] > 0] > 0).float().mean() > 0.95
    assert (per_char[batch["char_valid"] == 0] == 0).all()


def test_forked_data_workers_times_processes_read_distinct_samples():
    from dreamtext.train.utils import step_batches

    # The default (fork) context, as training uses it: forked workers used to hang in OpenCV when the
    # parent had used cv2 before (e.g. the reader tests earlier in this process).
    cfg = tiny_test_cfg().override({"data.num_workers": 2, "train.batch_size": 2})
    seen = []
    for rank in range(2):
        seen += [k for b in itertools.islice(step_batches(cfg, rank, 2, seed=0), 3) for k in b["key"]]
    assert sorted(seen) == sorted(f"synth-0-{i}" for i in range(12))


def test_records_the_model_cannot_write_are_replaced_by_the_next(tmp_path):
    from dreamtext.data.record import TextRecord
    from dreamtext.data.shards import write_shard
    from dreamtext.train.utils import IndexedSamples

    img = np.zeros((20, 40, 3), np.uint8)
    q = np.array([[2, 2], [38, 2], [38, 18], [2, 18]], np.float32)
    write_shard(tmp_path / "s.tar", [TextRecord(img, "x" * 30, q, key="long"), TextRecord(img, "ok", q, key="ok")])
    ds = IndexedSamples(tiny_test_cfg(), source=f"shards:{tmp_path}")
    assert [ds[i]["key"] for i in range(4)] == ["ok"] * 4
