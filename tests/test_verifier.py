"""The word verifier: CTC scoring, its training run (checkpoints, resume, export) and best-of-N in the pipeline."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _pipeline_fixtures import photo, save_random_pipeline

from dreamtext.charset import encode_batch
from dreamtext.cli import main
from dreamtext.config import load_config
from dreamtext.edit.pipeline import DreamTextPipeline, candidate_seed
from dreamtext.errors import CheckpointError, ConfigError
from dreamtext.model.verifier import WordVerifier, ctc_log_likelihood, greedy_readings, load_verifier, score_crops
from dreamtext.train.utils import read_metrics
from dreamtext.train.verifier_train import degrade, export_verifier, train_verifier

BOX = (20, 10, 100, 34)
BOX2 = (5, 40, 60, 70)


@pytest.fixture(scope="module")
def verifier_run(tmp_path_factory):
    """A ``test``-preset verifier trained for its 6 steps (checkpoints at 3 and 6), exported."""
    run = tmp_path_factory.mktemp("verifier") / "run"
    summary = train_verifier(load_config("test"), run, progress=False)
    export_verifier(run, run.parent / "exported")
    return run, summary


def _peaked(paths: list[str], t: int) -> torch.Tensor:
    """Log-probs (B, t, 95) that put ~all mass on one label per frame; '-' is the blank."""
    from dreamtext.charset import CHARSET

    lp = torch.full((len(paths), t, 95), -30.0)
    for b, path in enumerate(paths):
        for i, ch in enumerate(path.ljust(t, "-")):
            lp[b, i, 0 if ch == "-" else CHARSET.index(ch) + 1] = 0.0
    return lp.log_softmax(-1)


def test_ctc_likelihood_and_greedy_reading_on_known_paths():
    lp = _peaked(["a-b--", "aa-a-", "aaa--"], 5)
    ids = torch.from_numpy(encode_batch(["ab", "aa", "aa"], 4)).long()
    ll = ctc_log_likelihood(lp, ids)
    assert ll[0] > -1e-4 and ll[1] > -1e-4  # a path that spells the word has probability ~1
    assert ll[2] < -25  # "aaa" merges to one "a": a double letter needs a blank between
    wrong = ctc_log_likelihood(lp[:1], torch.from_numpy(encode_batch(["ba"], 4)).long())
    assert wrong < -25
    assert greedy_readings(lp) == ["ab", "aa", "a"]  # repeats merged, blanks dropped


def test_verifier_shapes_and_per_character_scores():
    cfg = load_config("test")
    torch.manual_seed(0)
    v = WordVerifier(cfg.verifier)
    h, w = cfg.image_size
    lp = v(torch.zeros(2, 3, h, w), torch.ones(2, 1, h, w))
    assert lp.shape == (2, w // 4, 95) and torch.allclose(lp.exp().sum(-1), torch.ones(2, w // 4), atol=1e-5)
    crops = np.random.default_rng(0).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    scored = score_crops(v, crops, np.ones((2, h, w)), ["ab", "abcd"], cfg.max_len)
    ids = torch.from_numpy(encode_batch(["ab", "abcd"], cfg.max_len)).long()
    image = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1
    expected = ctc_log_likelihood(v.eval()(image, torch.ones(2, 1, h, w)), ids).detach().numpy() / np.array([2, 4])
    np.testing.assert_allclose(scored.logp_per_char, expected, rtol=1e-5)
    assert len(scored.readings) == 2


def test_degrade_changes_only_the_region():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(4, 3, 16, 64, generator=g) * 2 - 1
    mask = torch.zeros(4, 1, 16, 64)
    mask[:, :, 4:12, 10:50] = 1
    out = degrade(image, mask, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(out * (1 - mask), image * (1 - mask))
    inside = (out - image).abs() * mask
    assert (inside.flatten(1).amax(1) > 0.05).all()
    assert torch.equal(degrade(image, mask, 0.0, torch.Generator().manual_seed(1)), image)


def test_training_logs_checkpoints_and_resumes_bit_identically(verifier_run, tmp_path):
    run, summary = verifier_run
    assert summary["step"] == 6 and summary["stopped"] is None and summary["bench_records"] == 8
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_3", "step_6"]
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics if "loss/ctc" in m] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(m["loss/ctc"]) for m in metrics if "loss/ctc" in m)
    assert "bench_acc" in metrics[-1]
    # A run killed after step 3: only that checkpoint is left; resuming reaches step 6's weights exactly.
    killed = tmp_path / "killed"
    shutil.copytree(run / "checkpoints" / "step_3", killed / "checkpoints" / "step_3")
    again = train_verifier(load_config("test"), killed, resume=True, progress=False)
    assert again["steps_this_run"] == 3
    a, _ = load_verifier(run / "checkpoints" / "step_6")
    b, _ = load_verifier(killed)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    with pytest.raises(CheckpointError, match="already holds a verifier run"):
        train_verifier(load_config("test"), killed, progress=False)


def test_export_holds_the_weights_alone(verifier_run):
    run, _ = verifier_run
    exported = run.parent / "exported"
    assert sorted(p.name for p in exported.iterdir()) == ["config.json", "model.safetensors", "state.json"]
    a, cfg = load_verifier(exported)
    b, _ = load_verifier(run)
    assert cfg.image_size == load_config("test").image_size
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_loading_something_else_names_the_problem(verifier_run, tmp_path):
    pipe_dir = save_random_pipeline(tmp_path / "pipe")
    with pytest.raises(CheckpointError, match="is not a word verifier"):
        load_verifier(pipe_dir)
    with pytest.raises(CheckpointError, match="is not a word verifier"):
        export_verifier(pipe_dir, tmp_path / "out")
    broken = tmp_path / "broken"
    shutil.copytree(verifier_run[0].parent / "exported", broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(CheckpointError, match="corrupt or not safetensors"):
        load_verifier(broken)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_verifier(tmp_path / "nothing")


@pytest.fixture(scope="module")
def pipe(verifier_run, tmp_path_factory):
    directory = tmp_path_factory.mktemp("pipe") / "pipeline"
    save_random_pipeline(directory, **{"sample.verifier": str(verifier_run[0].parent / "exported")})
    return DreamTextPipeline.from_pretrained(directory)


def test_best_of_n_keeps_the_top_scored_candidate_drawn_from_its_own_seed(pipe):
    img = photo(seed=4)
    one = pipe.edit(img, [BOX, BOX2], ["ab", "cde"], steps=2, restarts=1, seed=3)
    assert all(r.candidate_scores is None for r in one.regions)
    best = pipe.edit(img, [BOX, BOX2], ["ab", "cde"], steps=2, restarts=1, seed=3, candidates=3)
    for i, region in enumerate(best.regions):
        assert len(region.candidate_scores) == 3
        assert region.chosen == int(np.argmax(region.candidate_scores))
        assert isinstance(region.verifier_reading, str)
        assert region.candidate_crops.shape == (3, *pipe.cfg.image_size, 3)
        assert np.array_equal(region.candidate_crops[region.chosen], region.crop)
        assert np.abs(region.candidate_crops[0].astype(int) - one.regions[i].crop).max() <= 2  # candidate 0 = K=1
        # candidate c is what one sample with candidate_seed(3, c) gives (c = 0: the seed itself)
        seed = 3 if region.chosen == 0 else candidate_seed(3, region.chosen)
        alone = pipe.edit(img, [BOX, BOX2], ["ab", "cde"], steps=2, restarts=1, seed=seed)
        assert np.abs(alone.regions[i].crop.astype(int) - region.crop).max() <= 2
    assert len({candidate_seed(3, c) for c in range(1, 6)} | {3}) == 6


def test_best_of_n_picks_what_the_verifier_scores_highest(pipe, monkeypatch):
    import dreamtext.model.verifier as V

    real = V.score_crops

    def prefer_last(verifier, crops, masks, texts, max_len):  # the last candidate of every region scores best
        out = real(verifier, crops, masks, texts, max_len)
        out.logp_per_char = np.arange(len(crops), dtype=np.float64)
        return out

    monkeypatch.setattr(V, "score_crops", prefer_last)
    best = pipe.edit(photo(seed=5), [BOX, BOX2], ["ab", "cde"], steps=2, seed=1, candidates=4)
    assert [r.chosen for r in best.regions] == [3, 3]
    alone = pipe.edit(photo(seed=5), [BOX, BOX2], ["ab", "cde"], steps=2, seed=candidate_seed(1, 3))
    for a, b in zip(alone.regions, best.regions):
        assert np.abs(a.crop.astype(int) - b.crop).max() <= 2


def test_bad_candidates_and_a_verifier_of_another_size(pipe, tmp_path):
    for bad in (0, 17, 2.5, True):
        with pytest.raises(ConfigError, match="candidates"):
            pipe.edit(photo(), [BOX], ["a"], candidates=bad)
    other = tmp_path / "other"
    train_verifier(load_config("test").override({"image_size": [32, 128], "verifier.steps": 1,
                                                 "verifier.eval_records": 1}), other, progress=False)
    mismatched = DreamTextPipeline(pipe.model, pipe.cfg.override({"sample.verifier": str(other)}))
    with pytest.raises(CheckpointError, match=r"reads \(32, 128\) crops but this model writes \(16, 64\)"):
        mismatched.edit(photo(), [BOX], ["a"], steps=1, candidates=2)


def test_eval_with_candidates_records_the_pick_and_stops_on_a_missing_verifier(pipe, tmp_path):
    from dreamtext.evaluation.evaluate import EvalSettings, evaluate, weights_sha256

    settings = EvalSettings(data="bench", task="recon", limit=2, steps=1, candidates=2, report_samples=1)
    rows = evaluate(settings, tmp_path / "ev", pipeline=pipe, progress=False)
    assert rows["sampling"]["candidates"] == 2 and rows["n_samples"] == 2
    header = (tmp_path / "ev" / "samples.csv").read_text().splitlines()[0].split(",")
    assert "candidate" in header and "verifier_reading" in header
    # the results and the report say the numbers are best-of-2 and by which verifier's weights
    exported = Path(pipe.cfg.sample.verifier)
    assert rows["verifier"] == {"path": str(exported), "weights_sha256": weights_sha256(load_verifier(exported)[0])}
    assert f"best of 2 candidates** per record, kept by the word verifier `{exported}`" in \
        (tmp_path / "ev" / "report.md").read_text()
    single = evaluate(EvalSettings(data="bench", task="recon", limit=1, steps=1, report_samples=1),
                      tmp_path / "ev1", pipeline=pipe, progress=False)
    assert single["verifier"] is None and "best of" not in (tmp_path / "ev1" / "report.md").read_text()
    lost = DreamTextPipeline(pipe.model, pipe.cfg.override({"sample.verifier": str(tmp_path / "nowhere")}))
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate(settings, tmp_path / "ev2", pipeline=lost, progress=False)


def test_edit_cli_reports_the_kept_candidate(pipe, tmp_path, capsys):
    directory = tmp_path / "pipe"
    pipe.save_pretrained(directory)
    from PIL import Image

    Image.fromarray(photo()).save(tmp_path / "in.png")
    rc = main(["edit", str(tmp_path / "in.png"), "--box", "20,10,100,34", "--text", "abc", "--ckpt", str(directory),
               "--steps", "2", "--candidates", "2", "-o", str(tmp_path / "out.png")])
    assert rc == 0 and (tmp_path / "out.png").is_file()
    assert "kept candidate" in capsys.readouterr().out
    assert main(["edit", str(tmp_path / "in.png"), "--box", "20,10,100,34", "--text", "abc", "--ckpt",
                 str(directory), "--candidates", "0", "-o", str(tmp_path / "out.png")]) == 2
    assert "candidates must be" in capsys.readouterr().err


def test_shipped_verifier_reads_bench_crops_and_prefers_the_true_word():
    """The shipped verifier on the ground-truth crops of the first 32 ``bench`` records (held-out words).

    Measured when it was shipped (step 6,000): it reads 21 of them exactly (66 %, case-insensitive; 66.0 % of
    the first 256) and scores the true word above another record's word on all 32; an untrained verifier reads
    none.
    The bounds leave room for another CPU's rounding.
    """
    from dreamtext.data.sources import bench_source
    from dreamtext.data.transforms import make_model_sample
    from dreamtext.model.verifier import SHIPPED_VERIFIER_DIR

    assert (SHIPPED_VERIFIER_DIR / "model.safetensors").stat().st_size < 4 * 2**20
    verifier, cfg = load_verifier()
    assert cfg.image_size == (32, 128)
    src = bench_source(cfg)
    records = [src.generator.sample(i) for i in range(32)]
    samples = [make_model_sample(r, cfg, rng=np.random.default_rng(0)) for r in records]
    crops = np.stack([np.round((s["image"].transpose(1, 2, 0) + 1) * 127.5) for s in samples]).astype(np.uint8)
    masks = np.stack([s["mask"][0] for s in samples])
    texts = [r.text for r in records]
    true = score_crops(verifier, crops, masks, texts, cfg.max_len)
    read = np.mean([a.lower() == b.lower() for a, b in zip(true.readings, texts)])
    others = score_crops(verifier, crops, masks, texts[1:] + texts[:1], cfg.max_len).logp_per_char
    assert read >= 0.5
    assert np.mean(true.logp_per_char > others) >= 0.9
