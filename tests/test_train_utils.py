"""The trainer's plumbing: EMA, LR schedule, seeds, optimiser/RNG state round-trips, metrics, guard, pruning."""

import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from dreamtext.errors import DreamTextError
from dreamtext.model.checkpoint import complete_checkpoints, latest_checkpoint
from dreamtext.train.ema import EMA
from dreamtext.train.utils import (MetricsLogger, NonFiniteLossError, check_finite, flatten_optimizer_state,
                                   get_rng_state, lr_at, prune_checkpoints, read_metrics, set_rng_state, step_seed,
                                   unflatten_optimizer_state)


def test_ema_matches_closed_form_and_skips_frozen():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    model[1].weight.requires_grad_(False)
    ema = EMA(model, decay=0.9)
    assert "1.weight" not in ema.shadow and "0.weight" in ema.shadow
    w0 = model[0].weight.detach().clone()
    expected = w0.clone()
    for k in range(30):
        with torch.no_grad():
            model[0].weight.add_(1.0)
        d = min(0.9, (1 + k) / (10 + k))  # warm-up of the decay
        expected = d * expected + (1 - d) * model[0].weight.detach()
        ema.update(model)
    torch.testing.assert_close(ema.shadow["0.weight"], expected)
    # the average lags the raw weights (which moved by +30)
    assert (ema.shadow["0.weight"] < model[0].weight).all()
    # swapped_in runs with the average and restores the raw weights afterwards
    raw = model[0].weight.detach().clone()
    with ema.swapped_in(model):
        torch.testing.assert_close(model[0].weight, expected)
    torch.testing.assert_close(model[0].weight, raw)
    # the shadow (what ema.safetensors holds) restores into a fresh EMA
    ema2 = EMA(model, decay=0.9)
    ema2.load_shadow({k: v.clone() for k, v in ema.shadow.items()}, ema.num_updates)
    torch.testing.assert_close(ema2.shadow["0.weight"], expected)
    assert ema2.current_decay() == ema.current_decay()
    with pytest.raises(KeyError, match="0.weight"):
        ema2.load_shadow({}, 0)
    with pytest.raises(ValueError):
        EMA(model, decay=1.0)


def test_lr_warmup_then_cosine_and_constant():
    assert lr_at(0, 1.0, 4, 104, "cosine") == pytest.approx(0.25)
    assert lr_at(3, 1.0, 4, 104, "cosine") == pytest.approx(1.0)
    assert lr_at(54, 1.0, 4, 104, "cosine") == pytest.approx(0.5)  # halfway through the decay
    assert lr_at(104, 1.0, 4, 104, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_at(500, 1.0, 4, 104, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_at(50, 2e-4, 0, 100, "constant") == 2e-4
    with pytest.raises(DreamTextError, match="lr_schedule"):
        lr_at(0, 1.0, 0, 10, "linear")


def test_step_seed_depends_on_every_argument():
    seeds = {step_seed(s, t, r, m) for s in (0, 1) for t in (0, 1) for r in (0, 1) for m in (0, 1)}
    assert len(seeds) == 16
    assert step_seed(3, 7, 1) == step_seed(3, 7, 1)
    assert all(0 <= s < 2**63 for s in seeds)


def test_optimizer_state_round_trips_through_safetensors(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).square().mean().backward()
        opt.step()
    tensors, meta = flatten_optimizer_state(opt.state_dict())
    assert set(tensors) >= {"state.0.exp_avg", "state.0.exp_avg_sq", "state.1.step"}
    save_file(tensors, str(tmp_path / "opt.safetensors"))
    (tmp_path / "opt.json").write_text(json.dumps(meta))
    # a second model/optimizer restored from disk takes the identical next step
    model2 = torch.nn.Linear(4, 3)
    model2.load_state_dict(model.state_dict())
    opt2 = torch.optim.AdamW(model2.parameters(), lr=5.0)
    opt2.load_state_dict(unflatten_optimizer_state(load_file(str(tmp_path / "opt.safetensors")),
                                                   json.loads((tmp_path / "opt.json").read_text())))
    assert opt2.param_groups[0]["lr"] == 1e-2 and opt2.param_groups[0]["betas"] == (0.8, 0.95)
    x = torch.randn(5, 4)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).square().mean().backward()
        o.step()
    torch.testing.assert_close(model.weight, model2.weight, rtol=0, atol=0)
    with pytest.raises(DreamTextError, match="state.<param>"):
        unflatten_optimizer_state({"bogus": torch.zeros(1)}, meta)


def test_rng_state_round_trips_through_json():
    state = json.loads(json.dumps(get_rng_state()))
    a = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(state)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_check_finite_names_the_bad_terms():
    check_finite({"total": torch.tensor(1.0), "mask": 0.5}, step=3)
    with pytest.raises(NonFiniteLossError, match=r"step 7 \(total=nan, attn=inf\)"):
        check_finite({"total": torch.tensor(float("nan")), "attn": float("inf"), "id": torch.tensor(0.1)}, step=7)


def test_metrics_logger_appends_and_truncates_on_resume(tmp_path):
    log = MetricsLogger(tmp_path, tensorboard=False)
    for s in range(1, 6):
        log.log(s, {"loss/total": 1.0 / s, "miou": 0.1 * s})
    log.close()
    recs = read_metrics(tmp_path)
    assert [r["step"] for r in recs] == [1, 2, 3, 4, 5] and recs[1]["loss/total"] == 0.5
    # resumed from the checkpoint at step 3: steps 4-5 of the killed run are dropped
    log = MetricsLogger(tmp_path, resume_step=3, tensorboard=False)
    log.log(4, {"loss/total": 9.0})
    log.close()
    recs = read_metrics(tmp_path)
    assert [r["step"] for r in recs] == [1, 2, 3, 4] and recs[-1]["loss/total"] == 9.0
    # a fresh (non-resumed) run starts an empty file
    MetricsLogger(tmp_path, tensorboard=False).close()
    assert read_metrics(tmp_path) == []


def test_prune_keeps_the_newest_complete_checkpoints(tmp_path):
    for step in (5, 10, 15, 20):
        d = tmp_path / f"step_{step:08d}"
        d.mkdir()
        (d / "state.json").write_text(json.dumps({"step": step}))
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(b"")
    (tmp_path / "step_00000025").mkdir()  # incomplete (no config.json / model.safetensors): not a checkpoint
    (tmp_path / "step_00000025" / "state.json").write_text("{}")
    (tmp_path / ".step_00000030.tmp").mkdir()
    assert [s for s, _ in complete_checkpoints(tmp_path)] == [5, 10, 15, 20]
    assert latest_checkpoint(tmp_path).name == "step_00000020"  # resume's idea of complete is the same
    removed = prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["step_00000005", "step_00000010"]
    assert [s for s, _ in complete_checkpoints(tmp_path)] == [15, 20]
    assert prune_checkpoints(tmp_path, keep=0) == []
    assert len(complete_checkpoints(tmp_path)) == 2


def test_data_stream_is_a_function_of_the_micro_batch_and_splits_processes():
    from dreamtext.config import load_config
    from dreamtext.train.utils import IndexedSamples, micro_batch_indices, step_batches

    assert list(micro_batch_indices(3, 2, 1, 2)) == [14, 15]
    cfg = load_config("test", overrides=["train.batch_size=2"])
    it = step_batches(cfg, 0, 1, seed=0)
    b0, b1, b2 = next(it), next(it), next(it)
    assert b0["image"].shape == (2, 3, *cfg.image_size) and len(b0["text"]) == 2
    # a resumed stream starts exactly where the counter says
    again = next(step_batches(cfg, 0, 1, seed=0, start_micro=2))
    assert again["text"] == b2["text"] and torch.equal(again["image"], b2["image"])
    # with 2 processes, micro-batch 0 covers samples 0-3: rank 0 gets 0-1, rank 1 gets 2-3
    r0, r1 = next(step_batches(cfg, 0, 2, seed=0)), next(step_batches(cfg, 1, 2, seed=0))
    assert r0["text"] == b0["text"] and r1["text"] == b1["text"]
    # a finite source is read as seeded per-epoch permutations: every record once per epoch
    ds = IndexedSamples(cfg, seed=0, source="synth:6")
    epoch0 = [ds.record(i).key for i in range(6)]
    epoch1 = [ds.record(i).key for i in range(6, 12)]
    assert len(set(epoch0)) == 6 and set(epoch0) == set(epoch1) and epoch0 != epoch1


def test_edit_pairs_replace_a_fraction_of_the_synthetic_samples():
    from dreamtext.config import load_config
    from dreamtext.errors import ConfigError
    from dreamtext.train.utils import IndexedSamples

    plain = IndexedSamples(load_config("test"), seed=3)
    paired = IndexedSamples(load_config("test", overrides=["data.edit_pairs=0.5"]), seed=3)
    which = [paired.is_pair(i) for i in range(200)]
    assert 70 <= sum(which) <= 130 and not any(plain.is_pair(i) for i in range(200))
    for i in range(8):
        a, b = plain[i], paired[i]
        if not which[i]:  # the other samples are exactly those of a run without pairs
            assert a["text"] == b["text"] and torch.equal(a["image"], b["image"])
            continue
        source, target = paired.record(i, pair=True)
        assert b["text"] == target.text != a["text"] == source.text and b["key"].endswith("-pair")
        assert torch.equal(b["mask"], a["mask"])  # the old word's box
        # the model sees the old word's scene around the box and must produce the new word's
        assert torch.equal(b["masked_image"], a["masked_image"]) and not torch.equal(b["image"], a["image"])
    with pytest.raises(ConfigError, match="data.edit_pairs"):
        IndexedSamples(load_config("test", overrides=["data.edit_pairs=1.5"]))
    with pytest.raises(ConfigError, match="synthetic generator"):
        IndexedSamples(load_config("test", overrides=["data.edit_pairs=0.5"]), source="shards:/nowhere")
