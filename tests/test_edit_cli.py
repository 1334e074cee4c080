"""``dreamtext edit`` and ``dreamtext demo`` through dreamtext.cli.main, with a random ``test``-preset model."""

import json

import numpy as np
import pytest
from _pipeline_fixtures import photo, save_random_pipeline
from PIL import Image

from dreamtext.cli import main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return str(save_random_pipeline(tmp_path_factory.mktemp("cli") / "pipe"))


@pytest.fixture()
def image(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(photo(64, 160)).save(path)
    return path


def test_edit_writes_result_and_masks(ckpt, image, tmp_path, capsys):
    out, masks = tmp_path / "out.png", tmp_path / "m.png"
    rc = main(["edit", str(image), "--box", "10,8,90,30", "--text", "Hi", "--quad", "90,36,150,42,149,60,89,54",
               "--text", "yo", "-o", str(out), "--masks", str(masks), "--steps", "2", "--seed", "3",
               "--sampler", "euler", "--ckpt", ckpt])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    src = np.asarray(Image.open(image))
    res = np.asarray(Image.open(out))
    assert res.shape == src.shape and Image.open(masks).size == (160, 64)
    umask = __import__("os").umask(0)
    __import__("os").umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not a private temp file
    assert np.array_equal(res[:, :5], src[:, :5])  # far from both regions: unchanged
    # same arguments, same bytes
    out2 = tmp_path / "out2.png"
    main(["edit", str(image), "--box", "10,8,90,30", "--text", "Hi", "--quad", "90,36,150,42,149,60,89,54",
          "--text", "yo", "-o", str(out2), "--steps", "2", "--seed", "3", "--sampler", "euler", "--ckpt", ckpt])
    assert np.array_equal(np.asarray(Image.open(out2)), res)
    out3 = tmp_path / "out3.png"  # Poisson paste-back: same samples, other pixels inside the regions only
    main(["edit", str(image), "--box", "10,8,90,30", "--text", "Hi", "--quad", "90,36,150,42,149,60,89,54",
          "--text", "yo", "-o", str(out3), "--steps", "2", "--seed", "3", "--sampler", "euler", "--ckpt", ckpt,
          "--blend", "poisson"])
    res3 = np.asarray(Image.open(out3))
    assert not np.array_equal(res3, res) and np.array_equal(res3[:, :5], src[:, :5])


@pytest.mark.parametrize("args, words", [
    (["--box", "10,8,90,30", "--text", "héllo"], "outside the charset"),
    (["--box", "10,8,90,30", "--text", "x" * 49], "at most 48"),
    (["--box", "10,8,90,30", "--text", " leading"], "leading, trailing or double spaces"),
    (["--box", "10,8,90,30"], "1 region(s) but 0 --text"),
    (["--box", "10,8,90", "--text", "a"], "4 comma-separated numbers"),
    (["--quad", "1,2,3,4", "--text", "a"], "8 comma-separated numbers"),
    (["--box", "10,8,900,30", "--text", "a"], "outside the 160×64 image"),
    (["--box", "10,8,10,30", "--text", "a"], "zero area"),
    (["--box", "10,8,90,30", "--text", "a", "--steps", "0"], "steps"),
])
def test_bad_input_is_one_line_nonzero_and_writes_nothing(ckpt, image, tmp_path, capsys, args, words):
    out = tmp_path / "never.png"
    rc = main(["edit", str(image), *args, "-o", str(out), "--ckpt", ckpt])
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert words in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.glob(".never*"))


def test_bad_files_and_paths(ckpt, image, tmp_path, capsys):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\x00garbage")
    assert main(["edit", str(junk), "--box", "1,1,9,9", "--text", "a", "-o", str(tmp_path / "o.png"),
                 "--ckpt", ckpt]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["edit", str(image), "--box", "1,1,9,9", "--text", "a", "-o", str(tmp_path / "o.xyz"),
                 "--ckpt", ckpt]) == 2
    assert "extension" in capsys.readouterr().err
    bad_ckpt = tmp_path / "ck"
    bad_ckpt.mkdir()
    (bad_ckpt / "config.json").write_text("{\"max_len\": \"many\"}")
    (bad_ckpt / "model.safetensors").write_bytes(b"")
    assert main(["edit", str(image), "--box", "1,1,9,9", "--text", "a", "-o", str(tmp_path / "o.png"),
                 "--ckpt", str(bad_ckpt)]) == 2
    assert "config" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_spec_one_bad_job_does_not_stop_the_others(ckpt, image, tmp_path, capsys):
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps([
        {"image": image.name, "regions": [{"box": [10, 8, 90, 30], "text": "ok"}], "out": "a.png"},
        {"image": image.name, "regions": [{"box": [10, 8, 90, 30], "text": "bad\ttext"}], "out": "b.png"},
        {"image": "missing.png", "regions": [{"box": [1, 1, 9, 9], "text": "x"}], "out": "c.png"},
        {"image": image.name, "regions": [{"quad": [90, 36, 150, 42, 149, 60, 89, 54], "text": "Q"}],
         "out": "d.png", "masks": "d_masks.png", "seed": 5, "blend": "poisson", "mask_rule": "strokes"},
        "not a job",
    ]))
    rc = main(["edit", "--spec", str(spec), "--steps", "1", "--ckpt", ckpt])
    captured = capsys.readouterr()
    assert rc == 1
    assert (tmp_path / "a.png").exists() and (tmp_path / "d.png").exists() and (tmp_path / "d_masks.png").exists()
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "c.png").exists()
    assert "job 1" in captured.err and "charset" in captured.err
    assert "job 2" in captured.err and "does not exist" in captured.err
    assert "job 4" in captured.err
    assert "2 of 5 job(s) done, 3 failed" in captured.out


def test_spec_file_errors(ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    assert main(["edit", "--spec", str(bad), "--ckpt", ckpt]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_no_shipped_model_message(image, tmp_path, capsys, monkeypatch):
    import dreamtext.model.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "SHIPPED_MODEL_DIR", tmp_path / "none")
    assert main(["edit", str(image), "--box", "1,1,9,9", "--text", "a", "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "no shipped model" in err and "--ckpt" in err


def test_demo_writes_before_after_pictures(ckpt, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--only", "rocket.jpg", "--steps", "1", "--ckpt", ckpt]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"rocket_edited.png", "rocket_before_after.png", "demo.png"}
    edited = Image.open(out / "rocket_edited.png")
    assert edited.size == Image.open(__import__("dreamtext.commands.demo", fromlist=["x"]).SAMPLES_DIR
                                     / "rocket.jpg").size
    assert Image.open(out / "demo.png").size[0] > 2 * edited.size[0] * 0.9


def test_shipped_samples_are_small_and_valid():
    from dreamtext.commands.demo import SAMPLES_DIR, load_samples
    from dreamtext.edit.regions import parse_region

    samples = load_samples()
    assert len(samples) >= 3
    for s in samples:
        path = SAMPLES_DIR / s["image"]
        assert path.stat().st_size < 100_000
        img = Image.open(path)
        for region, text in zip(s["regions"], s["texts"]):
            parse_region(region, (img.height, img.width))  # inside the image, well-formed
            assert 1 <= len(text) <= 12
