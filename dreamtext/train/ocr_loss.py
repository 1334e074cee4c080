"""The recognition loss (ours; off in the paper's configuration): does the model's predicted image read?

For each training sample the noise process turns the model's prediction at timestep t into the one-step
estimate x̂0 (``NoiseProcess.predict_x0``; decoded by the VAE in a latent preset). A **frozen** word
recogniser — the word verifier (``dreamtext.verifier``, a CRNN trained with CTC on the data engine's crops)
— reads x̂0 beside the region mask, exactly as it reads candidates at inference, and the CTC loss of the
target text is added to the objective, weighted by the noise level:

    L_ocr = Σ_b w(t_b) · k_b · CTC(R(x̂0_b, m_b), c_b) / len(c_b)  /  Σ_b k_b

with w(t) = ᾱ_t (``loss.ocr_weighting = "alpha_bar"``: at high noise x̂0 is a blur no recogniser can read)
or 1[t < ``loss.ocr_t_max``] ("threshold"), and k_b = 0 for the rows whose text condition is dropped (CFG:
they were not asked to write anything). The gradient reaches the UNet and ψ only through x̂0: the
recogniser's parameters never train and are never saved with the model.

Why the verifier and not the evaluation OCR: a score must not be bought by fooling the judge, so the
evaluation keeps PP-OCR (``rapidocr-onnxruntime``) and the loss reads with our own recogniser. The verifier
reads the model's window and its region mask rather than a rectified crop, which is the crop it was trained
on and the one the loss can differentiate through without a resampling step.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import DreamTextConfig
from ..errors import ConfigError

OCR_WEIGHTINGS = ("alpha_bar", "threshold")


def check_ocr_config(cfg: DreamTextConfig) -> None:
    c = cfg.loss
    if not (c.ocr >= 0 and c.ocr < float("inf")):
        raise ConfigError(f"loss.ocr must be a weight ≥ 0 (0 turns it off), got {c.ocr}")
    if c.ocr_weighting not in OCR_WEIGHTINGS:
        raise ConfigError(f"loss.ocr_weighting must be one of {', '.join(OCR_WEIGHTINGS)}; got {c.ocr_weighting!r}")
    if not 1 <= c.ocr_t_max <= cfg.diffusion.num_train_timesteps:
        raise ConfigError(f"loss.ocr_t_max must be in [1, {cfg.diffusion.num_train_timesteps}], got {c.ocr_t_max}")


class RecognitionLoss:
    """``loss(x0_hat, mask, token_ids, t, keep) -> (scalar L_ocr, per-sample CTC loss per character (B,))``.

    Not an ``nn.Module`` on purpose: the recogniser must stay out of the model's state dict, its optimiser
    and DDP's parameter list. ``x0_hat`` (B, 3, H, W) in about [-1, 1]; ``mask`` (B, 1, H, W); ``token_ids``
    (B, L); ``t`` (B,) timesteps; ``keep`` (B,) bool (False: a CFG-dropped row).
    """

    def __init__(self, cfg: DreamTextConfig, alphas_cumprod: torch.Tensor, recognizer: nn.Module | None = None):
        from ..model.verifier import load_verifier

        check_ocr_config(cfg)
        if recognizer is None:
            recognizer, rcfg = load_verifier(cfg.loss.ocr_recognizer)
            if tuple(rcfg.image_size) != tuple(cfg.image_size):
                raise ConfigError(f"loss.ocr_recognizer reads {tuple(rcfg.image_size)} crops but the model writes "
                                  f"{tuple(cfg.image_size)} windows; train a verifier for this size")
        recognizer.requires_grad_(False)
        recognizer.eval()
        for m in recognizer.modules():  # a cuDNN RNN only differentiates in training mode; without dropout
            if isinstance(m, nn.RNNBase) and m.dropout == 0:  # it computes the same, and BatchNorm stays frozen
                m.train()
        self.recognizer = recognizer
        self.cfg = cfg
        self.alphas_cumprod = alphas_cumprod.float()

    def weights(self, t: torch.Tensor) -> torch.Tensor:
        """w(t) (B,): ᾱ_t, or 1 below ``loss.ocr_t_max``."""
        if self.cfg.loss.ocr_weighting == "alpha_bar":
            return self.alphas_cumprod.to(t.device)[t]
        return (t < self.cfg.loss.ocr_t_max).float()

    def to(self, device) -> "RecognitionLoss":
        self.recognizer.to(device)
        return self

    def __call__(self, x0_hat: torch.Tensor, mask: torch.Tensor, token_ids: torch.Tensor, t: torch.Tensor,
                 keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch.nn.functional as F

        if next(self.recognizer.parameters()).device != x0_hat.device:
            self.to(x0_hat.device)
        log_probs = self.recognizer(x0_hat.float().clamp(-1.0, 1.0), mask.float())  # (B, T, 95)
        lengths = (token_ids > 0).sum(dim=1)
        # zero_infinity: a word the recogniser's T columns cannot hold contributes nothing (and no NaN gradient).
        nll = F.ctc_loss(log_probs.transpose(0, 1).float(), token_ids[token_ids > 0],
                         torch.full_like(lengths, log_probs.shape[1]), lengths, blank=0, reduction="none",
                         zero_infinity=True)
        per_char = nll / lengths.clamp_min(1)  # (B,)
        w = self.weights(t) * keep.float()
        total = (w * per_char).sum() / keep.float().sum().clamp_min(1.0)
        return total, per_char.detach()
