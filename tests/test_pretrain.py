"""Text-encoder pre-training: a tiny encoder learns to retrieve words from their renderings."""

import numpy as np
import pytest
import torch

from dreamtext.cli import main
from dreamtext.config import load_config
from dreamtext.errors import CheckpointError
from dreamtext.model.text_encoder import TextEncoder
from dreamtext.train.pretrain import RenderedWords, load_encoder_weights, pretrain_encoder
from dreamtext.train.utils import read_metrics

QUICK = ["pretrain.steps=50", "pretrain.batch_size=16", "pretrain.lr=3e-3", "pretrain.warmup_steps=5",
         "pretrain.log_every=10", "pretrain.eval_batches=4", "pretrain.vocab=16"]


def test_rendered_words_are_deterministic_crops():
    cfg = load_config("test")
    ds = RenderedWords(cfg, seed=3)
    a, b, c = ds[7], ds[7], ds[8]
    assert a["word_crop"].shape == (1, *cfg.text.vis_size) and a["word_crop"].dtype == torch.float32
    assert a["token_ids"].shape == (cfg.max_len,) and int(a["token_ids"][0]) != 0
    assert torch.equal(a["word_crop"], b["word_crop"]) and torch.equal(a["token_ids"], b["token_ids"])
    assert not torch.equal(a["word_crop"], c["word_crop"])
    assert -1.0 <= float(a["word_crop"].min()) and float(a["word_crop"].max()) <= 1.0
    assert float(a["word_crop"].std()) > 0.1  # ink on paper, not a blank crop


def test_tiny_encoder_beats_chance_retrieval_and_loads_into_a_model(tmp_path):
    cfg = load_config("test", overrides=QUICK)
    out = tmp_path / "enc" / "text_encoder.safetensors"
    summary = pretrain_encoder(cfg, out=out, progress=False)
    # held-out renders (other seed: other fonts/sizes/noise) of the 16-word pool, batches of 16
    assert summary["eval_retrieval_acc"] > 2.0 * summary["chance"] and summary["eval_retrieval_acc"] > 0.25
    recs = read_metrics(out.parent)
    first, last = recs[0], [r for r in recs if "loss" in r][-1]
    assert last["ce_cls"] < first["ce_cls"] and last["loss"] < first["loss"]
    assert recs[-1]["eval_retrieval_acc"] == summary["eval_retrieval_acc"]
    # the trainer's loader puts exactly these weights into a fresh encoder
    fresh = TextEncoder(cfg)
    load_encoder_weights(fresh, out.parent)  # a directory holding text_encoder.safetensors works too
    from safetensors.torch import load_file

    saved = load_file(str(out))
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in saved.items())
    # ...and so does the diffusion trainer when train.encoder_ckpt points at it
    from dreamtext.train.trainer import Trainer

    trainer = Trainer(load_config("test", overrides=[f"train.out_dir={tmp_path / 'run'}",
                                                     f"train.encoder_ckpt={out}"]))
    te = trainer.model.text_encoder.state_dict()
    assert all(torch.equal(te[k], v) for k, v in saved.items())
    # an encoder of another width is refused with a clear message
    wide = TextEncoder(load_config("test", overrides=["text.dim=48"]))
    with pytest.raises(CheckpointError, match="shape"):
        load_encoder_weights(wide, out)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder_weights(fresh, tmp_path / "missing.safetensors")


def test_pretrain_command_runs(tmp_path, capsys):
    out = tmp_path / "e.safetensors"
    rc = main(["pretrain-encoder", "--preset", "test", "pretrain.steps=2", "pretrain.batch_size=4",
               "pretrain.eval_batches=1", "--out", str(out), "--no-progress"])
    assert rc == 0 and out.is_file() and (tmp_path / "e.json").is_file()
    assert "retrieval" in capsys.readouterr().out
    assert main(["pretrain-encoder", "--preset", "test", "pretrain.nonsense=1", "--out", str(out)]) == 2
    assert np.isfinite(read_metrics(tmp_path)[-1]["eval_retrieval_acc"])
