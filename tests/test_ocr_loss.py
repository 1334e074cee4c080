"""The recognition loss (dreamtext.ocr_loss): x̂0 from the prediction, a frozen recogniser's CTC loss, weighting."""

import numpy as np
import pytest
import torch

from dreamtext.cli import main
from dreamtext.config import load_config
from dreamtext.diffusion.noise import NoiseProcess
from dreamtext.errors import ConfigError
from dreamtext.model.checkpoint import save_checkpoint
from dreamtext.model.network import DreamTextModel
from dreamtext.model.verifier import WordVerifier
from dreamtext.train.ocr_loss import RecognitionLoss
from dreamtext.train.utils import IndexedSamples, read_metrics


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_predict_x0_inverts_the_noising_for_the_exact_prediction(prediction_type):
    cfg = load_config("test", overrides=[f"diffusion.prediction_type={prediction_type}"])
    noise_process = NoiseProcess(cfg)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(5, 3, 16, 64, generator=g) * 2 - 1
    noise = torch.randn(5, 3, 16, 64, generator=g)
    t = torch.tensor([0, 10, 300, 700, 999])
    z_t = noise_process.add_noise(x0, noise, t)
    x0_hat = noise_process.predict_x0(z_t, noise_process.target(x0, noise, t), t)
    # ε divides by √ᾱ, which is tiny at t = 999 (float32 rounding is multiplied there); v never divides.
    atol = 1e-4 if prediction_type == "v_prediction" else 1e-3
    torch.testing.assert_close(x0_hat[:4], x0[:4], atol=atol, rtol=0)
    torch.testing.assert_close(x0_hat[4], x0[4], atol=1e-4 if prediction_type == "v_prediction" else 1e-2, rtol=0)


@pytest.fixture(scope="module")
def test_recognizer(tmp_path_factory):
    """A random ``test``-preset word verifier (16×64 crops) saved as a verifier checkpoint."""
    cfg = load_config("test")
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("recognizer") / "verifier"
    save_checkpoint(path, cfg, {"model": WordVerifier(cfg.verifier).state_dict()}, {"kind": "verifier", "step": 0})
    return path


def _batch(cfg, n=4):
    ds = IndexedSamples(cfg, seed=2)
    return torch.utils.data.default_collate([ds[i] for i in range(n)])


def test_weights_drop_rows_and_gradient_reach_the_image_not_the_recogniser(test_recognizer):
    cfg = load_config("test", overrides=["loss.ocr=1.0", f"loss.ocr_recognizer={test_recognizer}"])
    ab = NoiseProcess(cfg).alphas_cumprod
    loss = RecognitionLoss(cfg, ab)
    batch = _batch(cfg)
    x = batch["image"].clone().requires_grad_(True)
    t = torch.tensor([0, 100, 500, 999])
    keep = torch.tensor([True, True, True, False])
    total, per_char = loss(x, batch["mask"], batch["token_ids"], t, keep)
    # Σ_b w(t_b)·k_b·CTC_b/len_b / Σ_b k_b with w = ᾱ_t, by hand from the per-sample values
    expected = (ab[t] * keep.float() * per_char).sum() / 3
    assert float(total) == pytest.approx(float(expected), rel=1e-6)
    total.backward()
    assert x.grad[:3].abs().sum() > 0 and x.grad[3].abs().sum() == 0  # a CFG-dropped row gets no gradient
    assert all(p.grad is None and not p.requires_grad for p in loss.recognizer.parameters())
    thresh = RecognitionLoss(cfg.override(["loss.ocr_weighting=threshold", "loss.ocr_t_max=400"]), ab)
    assert thresh.weights(t).tolist() == [1.0, 1.0, 0.0, 0.0]


def test_bad_recognition_settings_are_config_errors(test_recognizer):
    ab = NoiseProcess(load_config("test")).alphas_cumprod
    with pytest.raises(ConfigError, match="loss.ocr_weighting"):
        RecognitionLoss(load_config("test", overrides=["loss.ocr=1", "loss.ocr_weighting=sometimes",
                                                       f"loss.ocr_recognizer={test_recognizer}"]), ab)
    with pytest.raises(ConfigError, match="reads \\(32, 128\\) crops"):  # the shipped verifier, a 16×64 model
        RecognitionLoss(load_config("test", overrides=["loss.ocr=1"]), ab)


def test_objective_adds_the_weighted_term_and_keeps_the_recogniser_out_of_the_model(test_recognizer):
    from dreamtext.train.losses import TrainingObjective

    cfg = load_config("test", overrides=["loss.ocr=0.5", f"loss.ocr_recognizer={test_recognizer}"])
    torch.manual_seed(0)
    model = DreamTextModel(cfg)
    with_ocr = TrainingObjective(model, cfg)
    without = TrainingObjective(model, cfg.override(["loss.ocr=0"]))
    assert without.recognition is None
    batch = _batch(cfg)
    a = with_ocr(batch, 0, torch.Generator().manual_seed(1))
    b = without(batch, 0, torch.Generator().manual_seed(1))
    assert float(a["total"]) == pytest.approx(float(b["total"]) + 0.5 * float(a["ocr"]), rel=1e-5)
    assert float(a["ocr"]) > 0
    names = set(model.state_dict())
    assert not any(k.startswith("recogni") or "rnn" in k for k in names)
    assert sum(1 for _ in with_ocr.parameters()) == sum(1 for _ in model.parameters())


def test_training_logs_the_recognition_loss_and_records_it(test_recognizer, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--preset", "test", f"train.out_dir={out}", "train.batch_size=2", "train.log_every=1",
                 "train.sample_every=0", "train.max_steps=2", "loss.ocr=0.2",
                 f"loss.ocr_recognizer={test_recognizer}", "--no-progress"]) == 0
    recs = [r for r in read_metrics(out) if "loss/total" in r]
    # A step can log 0: words the 16×64 recogniser's 8 columns cannot hold contribute nothing (zero_infinity).
    assert len(recs) == 2 and all(np.isfinite(r["loss/ocr"]) and r["loss/ocr"] >= 0 for r in recs)
    assert max(r["loss/ocr"] for r in recs) > 0
    from dreamtext.model.checkpoint import latest_checkpoint, read_config

    assert read_config(latest_checkpoint(out)).loss.ocr == 0.2
