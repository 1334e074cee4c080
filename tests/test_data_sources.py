"""Sources behind spec strings, the fixed benchmark split, and the PyTorch dataset/dataloader."""

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dreamtext.config import test as tiny_test_cfg
from dreamtext.config import tiny
from dreamtext.data.sources import BENCH_SEED, BENCH_SIZE, ModelSampleDataset, make_dataloader, open_source
from dreamtext.data.words import english_words
from dreamtext.errors import DatasetError


def keys(ds, n=None):
    return [s["key"] for s in itertools.islice(iter(ds), n)]


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


def test_processes_get_disjoint_parts_of_a_finite_source():
    cfg = tiny_test_cfg()
    parts = [keys(ModelSampleDataset(cfg, "synth:10", rank=r, world_size=3, repeat=False)) for r in range(3)]
    flat = sum(parts, [])
    assert sorted(flat) == sorted(f"synth-0-{i}" for i in range(10)) and len(set(flat)) == 10
    assert all(parts)


def test_processes_get_disjoint_endless_streams():
    cfg = tiny_test_cfg()
    k0 = keys(ModelSampleDataset(cfg, "synth", rank=0, world_size=2), 4)
    k1 = keys(ModelSampleDataset(cfg, "synth", rank=1, world_size=2), 4)
    assert k0 == [f"synth-0-{i}" for i in (0, 2, 4, 6)] and k1 == [f"synth-0-{i}" for i in (1, 3, 5, 7)]
    with pytest.raises(DatasetError, match="rank 2"):
        ModelSampleDataset(cfg, "synth", rank=2, world_size=2)


def test_dataloader_workers_times_processes_are_all_distinct():
    cfg = tiny_test_cfg()
    seen = []
    for rank in range(2):
        ds = ModelSampleDataset(cfg, "synth:12", rank=rank, world_size=2, repeat=False)
        # The default (fork) context, as training uses it: forked workers used to hang in OpenCV when the
        # parent had used cv2 before (e.g. the reader tests earlier in this process).
        for batch in DataLoader(ds, batch_size=2, num_workers=2):
            seen += batch["key"]
    assert sorted(seen) == sorted(f"synth-0-{i}" for i in range(12))


def test_repeating_finite_source_reshuffles_each_epoch():
    cfg = tiny_test_cfg()
    k = keys(ModelSampleDataset(cfg, "synth:4", seed=1), 8)
    assert sorted(k[:4]) == sorted(k[4:]) == [f"synth-1-{i}" for i in range(4)]


def test_make_dataloader_batches():
    cfg = tiny_test_cfg()
    batch = next(iter(make_dataloader(cfg, "synth", seed=0)))
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


def test_too_long_records_are_skipped_and_counted(tmp_path):
    from dreamtext.data.shards import write_shard
    from dreamtext.data.record import TextRecord

    img = np.zeros((20, 40, 3), np.uint8)
    q = np.array([[2, 2], [38, 2], [38, 18], [2, 18]], np.float32)
    write_shard(tmp_path / "s.tar", [TextRecord(img, "x" * 30, q, key="long"), TextRecord(img, "ok", q, key="ok")])
    ds = ModelSampleDataset(tiny_test_cfg(), f"shards:{tmp_path}", repeat=False)
    assert keys(ds) == ["ok"] and ds.skipped.total == 1
