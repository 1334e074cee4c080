"""Tar shards (webdataset layout): writing, reading back, resuming; the ``dreamtext data`` command."""

import json
import tarfile

import numpy as np
import pytest

from dreamtext.cli import main
from dreamtext.config import test as tiny_test_cfg
from dreamtext.data.render import SynthGenerator
from dreamtext.data.shards import ShardReader, write_shard, write_synth_shards
from dreamtext.data.sources import open_source
from dreamtext.errors import DatasetError


@pytest.fixture(scope="module")
def records():
    gen = SynthGenerator(seed=9)
    return [gen.sample(i) for i in range(5)]


def test_png_shard_round_trip_is_exact(tmp_path, records):
    write_shard(tmp_path / "s.tar", records, image_format="png")
    with tarfile.open(tmp_path / "s.tar") as tar:
        names = tar.getnames()
    assert len(names) == 15 and all(n.count(".") in (1, 2) for n in names)
    assert any(n.endswith(".masks.png") for n in names) and any(n.endswith(".json") for n in names)
    back = list(ShardReader(tmp_path / "s.tar"))
    assert len(back) == 5
    for a, b in zip(records, back):
        assert (a.text, a.key, a.source) == (b.text, b.key, b.source)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.char_masks, b.char_masks)
        np.testing.assert_allclose(a.word_quad, b.word_quad, atol=1e-3)
        np.testing.assert_allclose(a.char_quads, b.char_quads, atol=1e-3)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_jpg_shard_is_close(tmp_path, records):
    write_shard(tmp_path / "s.tar", records)
    back = list(ShardReader(tmp_path))
    for a, b in zip(records, back):
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 4


def test_synth_shards_resume_and_guard_settings(tmp_path):
    cfg = tiny_test_cfg()
    out = tmp_path / "shards"
    s1 = write_synth_shards(out, cfg, num=7, shard_size=3, seed=1, progress=False)
    assert s1 == {"num": 7, "shards": 3, "written": 3, "skipped": 0}
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "shard-000000.tar", "shard-000001.tar",
                                                     "shard-000002.tar"]
    assert json.loads((out / "meta.json").read_text())["num"] == 7
    gen = SynthGenerator(cfg, seed=1)
    assert [r.text for r in ShardReader(out)] == [gen.sample(i).text for i in range(7)]
    before = (out / "shard-000000.tar").stat().st_mtime_ns
    (out / "shard-000001.tar").unlink()  # as if killed while writing shard 1
    (out / ".shard-000001.tar.abc.tmp").write_bytes(b"partial")
    s2 = write_synth_shards(out, cfg, num=7, shard_size=3, seed=1, progress=False)
    assert s2["written"] == 1 and s2["skipped"] == 2
    assert (out / "shard-000000.tar").stat().st_mtime_ns == before
    assert not list(out.glob(".*tmp"))
    assert len(ShardReader(out)) == 7
    with pytest.raises(DatasetError, match="other settings"):
        write_synth_shards(out, cfg, num=7, shard_size=3, seed=2, progress=False)


def test_corrupt_and_missing_shards(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DatasetError, match=r"x\.tar"):
        ShardReader(tmp_path / "x.tar")
    with pytest.raises(DatasetError, match="does not exist"):
        ShardReader(tmp_path / "missing")
    (tmp_path / "e").mkdir()
    with pytest.raises(DatasetError, match="no .tar shards"):
        ShardReader(tmp_path / "e")


def test_cli_synth_and_preview(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["data", "synth", "--out", str(out), "--num", "4", "--shard-size", "2", "--preset", "test"]) == 0
    assert "2 shard(s) written" in capsys.readouterr().out
    assert main(["data", "synth", "--out", str(out), "--num", "4", "--shard-size", "2", "--preset", "test"]) == 0
    assert "0 shard(s) written, 2 already complete" in capsys.readouterr().out
    png = tmp_path / "grid.png"
    assert main(["data", "preview", f"shards:{out}", "--out", str(png), "--num", "3", "--preset", "test"]) == 0
    from PIL import Image

    im = Image.open(png)
    assert im.height == 3 * 100 and im.width > 300
    assert main(["data", "preview", f"shards:{tmp_path / 'none'}", "--out", str(png)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert len(open_source(f"shards:{out}", tiny_test_cfg())) == 4
    pairs = tmp_path / "pairs.png"  # edit pairs: one row per pair, synthetic sources only
    assert main(["data", "preview", "synth", "--edit-pairs", "--out", str(pairs), "--num", "2", "--preset", "test"]) == 0
    assert Image.open(pairs).height == 2 * 100
    assert main(["data", "preview", f"shards:{out}", "--edit-pairs", "--out", str(pairs), "--preset", "test"]) == 2
    assert "--edit-pairs needs a synthetic source" in capsys.readouterr().err
