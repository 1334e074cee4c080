"""DreamText's training objective: L_mask, L_attn, L_align, L_id and balanced supervision (DESIGN §4, §5).

    L = L_mask + α·L_attn + β·(L_align + L_id)        α = cfg.loss.alpha, β = cfg.loss.beta

Two steps per training iteration (§5, "heuristic alternate optimisation"):

1. *estimate*: the character masks M (B, L, h', w') — from the ground truth
   while ``mask_source(step) == "gt"`` (and the sample has ground-truth masks),
   otherwise predicted from the current attention by §3 with no gradient;
2. *update*: the losses below with M held fixed; L_attn differentiates through
   the attention Ā only.

Supervision modes (``cfg.loss.supervision``), the paper's ablation:
``none`` — predicted masks throughout (the released code); ``gt`` — ground
truth throughout; ``balanced`` — ground truth for the first ``k_gt`` steps,
then predicted. Samples without ground-truth masks (``has_char_masks`` = 0)
always use the predicted ones. ``alpha=0 gamma=0`` switches mask supervision
off altogether (plain diffusion loss + the encoder terms).

``TrainingObjective`` is an ``nn.Module`` whose ``forward(batch, step)`` does
the whole objective in one call (noise, CFG drop, ψ, the UNet with attention
capture, the heads, the losses) so that ``accelerator.prepare`` / DDP wraps a
single forward; its ``full=False`` variant is the bare diffusion loss on the
same UNet (the throughput baseline).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DreamTextConfig
from ..errors import ConfigError
from ..model.char_masks import aggregate_maps, mask_iou, predict_char_masks, resize_char_masks
from ..model.text_encoder import info_nce

from ..config import ALIGN_FORMS, ATTN_FORMS, MASK_FORMS, SUPERVISION_MODES  # noqa: F401 (their home is config)


def check_loss_config(cfg: DreamTextConfig) -> None:
    """ConfigError unless every loss form names one of its kind (also checked when a config is loaded)."""
    from ..config_ranges import check_choices

    check_choices(cfg)


def _form(table: dict, key: str, value: str):
    """The implementation of loss form ``value`` of ``loss.<key>``: a name it does not know is an error, never
    another form."""
    try:
        return table[value]
    except KeyError:
        raise ConfigError(f"loss.{key} must be one of {', '.join(table)}; got {value!r}") from None


def mask_source(step: int, cfg: DreamTextConfig) -> str:
    """"gt" or "pred": where the masks of training step ``step`` come from (§5)."""
    mode = cfg.loss.supervision
    if mode == "gt" or (mode == "balanced" and step < cfg.loss.k_gt):
        return "gt"
    return "pred"


def run_model(model, noise_process, batch: dict, cfg: DreamTextConfig, generator: torch.Generator | None = None,
              drop: torch.Tensor | None = None, record: bool = True, heads: bool = True) -> dict:
    """One noisy forward pass with attention capture → ``model_out`` for ``diffusion_losses``.

    ``model_out``: ``pred`` ε̂ and ``target`` ε (B, C, h, w); ``maps`` list of (B, L, h_l, w_l); ``drop`` (B,)
    bool (CFG drop, probability cfg.loss.cond_dropout); ``char_logits`` (B, L, 95), ``text_emb`` /
    ``image_emb`` (B, proj) and ``logit_scale`` (when ``heads``); ``t`` (B,).
    """
    token_ids = batch["token_ids"]
    B = token_ids.shape[0]
    device = token_ids.device
    x0 = model.encode_image(batch["image"].float())
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(device=device, dtype=x0.dtype)
    t = noise_process.sample_timesteps(B, generator, device)
    z_t = noise_process.add_noise(x0, noise, t)
    if drop is None:
        drop = torch.rand(B, generator=generator) < cfg.loss.cond_dropout
    drop = drop.to(device)
    hidden = model.text_encoder(token_ids)  # ψ(c), (B, L, d), not dropped: the heads read it
    cond = model.make_cond(batch, drop=drop, hidden=hidden)
    store = model.attention_store
    store.reset()
    was_active, store.active = store.active, record
    try:
        pred = model(z_t, t, cond)
    finally:
        store.active = was_active
    out = {"pred": pred, "target": noise_process.target(x0, noise, t), "maps": store.maps(), "drop": drop, "t": t,
           "z_t": z_t}
    store.reset()
    if heads:
        te = model.text_encoder
        out["char_logits"] = te.char_logits(hidden)
        out["text_emb"] = te.text_embed(hidden, token_ids)
        if cfg.loss.beta > 0:
            out["image_emb"] = te.image_embed(batch["word_crop"].float())
            out["logit_scale"] = te.logit_scale
    return out


def estimate_masks(model_out: dict, batch: dict, step: int, cfg: DreamTextConfig) -> dict:
    """The estimate step of §5: Ā (with grad), predicted and ground-truth masks, and the masks M the losses use.

    Returns ``agg`` Ā (B, L, h', w') float32, ``pred_masks`` / ``gt_masks`` / ``masks`` bool (B, L, h', w')
    (padding slots all false), ``use_gt`` (B,) bool.
    """
    agg = aggregate_maps(model_out["maps"], cfg.loss.s_min, cfg.loss.mask_res)
    res = tuple(agg.shape[-2:])
    valid = (batch["char_valid"] > 0.5)[..., None, None]  # (B, L, 1, 1)
    pred_masks = predict_char_masks(agg) & valid
    gt_masks = resize_char_masks(batch["char_masks"], res) & valid
    has_gt = batch["has_char_masks"].reshape(-1) > 0.5
    use_gt = has_gt & (mask_source(step, cfg) == "gt")
    masks = torch.where(use_gt[:, None, None, None], gt_masks, pred_masks)
    return {"agg": agg, "pred_masks": pred_masks, "gt_masks": gt_masks, "masks": masks, "use_gt": use_gt,
            "has_gt": has_gt}


def mask_loss(err: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor, cfg: DreamTextConfig) -> torch.Tensor:
    """L_mask. err = ε − ε̂ (B, C, h, w) float32; masks bool (B, L, h', w'); valid (B, L) bool.

    paper: mean ((1 + γ·M_k) ⊙ err)², M_k = ∨_i M_i at the resolution of ε.
    code:  mean err² + 0.01 · mean_i s_i · (Σ M_i ⊙ err²) / (C · Σ M_i)   (the released code's per-character MSE).
    """
    return _form(MASK_LOSSES, "mask_form", cfg.loss.mask_form)(err, masks, valid, cfg)


def _mask_loss_paper(err, masks, valid, cfg):
    union = resize_char_masks(masks.any(dim=1, keepdim=True).float(), tuple(err.shape[-2:])).float()  # (B, 1, h, w)
    return ((1.0 + cfg.loss.gamma * union) * err).pow(2).mean()


def _mask_loss_code(err, masks, valid, cfg):
    per_char = resize_char_masks(masks.float(), tuple(err.shape[-2:])).float()  # (B, L, h, w)
    sq = err.pow(2).sum(dim=1)  # (B, h, w)
    inside = (per_char * sq[:, None]).sum((2, 3)) / (err.shape[1] * per_char.sum((2, 3))).clamp_min(1.0)
    w = valid.float()
    return err.pow(2).mean() + 0.01 * (inside * w).sum() / w.sum().clamp_min(1.0)


MASK_LOSSES = {"paper": _mask_loss_paper, "code": _mask_loss_code}


def attention_loss(agg: torch.Tensor, masks: torch.Tensor, keep: torch.Tensor, form: str) -> torch.Tensor:
    """L_attn over the slots where ``keep`` (B, L). M is a constant; the gradient flows through Ā.

    mse (paper): ‖Ā_i − M_i‖², mean over pixels. max_contrast (UDiffText / released code):
    max((1−M_i)⊙Ā_i) − max(M_i⊙Ā_i). ce (ours): see :func:`attention_ce`.
    """
    return _form(ATTN_LOSSES, "attn_form", form)(agg, masks.float(), keep)


def _per_slot_mean(per: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    w = keep.float()
    return (per * w).sum() / w.sum().clamp_min(1.0)


def _attention_mse(agg, m, keep):
    return _per_slot_mean((agg - m).pow(2).mean(dim=(2, 3)), keep)


def _attention_max_contrast(agg, m, keep):
    return _per_slot_mean((agg * (1 - m)).amax(dim=(2, 3)) - (agg * m).amax(dim=(2, 3)), keep)


def attention_ce(agg: torch.Tensor, m: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The ce form of L_attn: Ā (B, L, h, w) a softmax over the slots, M (B, L, h, w) in {0, 1}, keep (B, L).

        L = mean_i −Σ_p M_i(p)·log Ā_i(p) / Σ_p M_i(p)              a character's pixels attend to its slot
          + mean_b mean_{p ∉ ∪M} KL(u ‖ Ā(p)),  u uniform over the kept slots   background attends to none

    Why: at a pixel at most one slot can be high, so the mse form's gradient is mostly its ~98 % background
    pixels pushing every slot down at once, which the softmax cancels (in a from-scratch tiny model it left
    the maps uniform at any α from 0.01 to 10). The first term alone made each character's map a blob over
    its whole box; the second keeps the background at 1/n, so that mean + 2·std (§3) cuts the strokes out.
    Both terms are 0 at their optimum.
    """
    log_a = torch.log(agg.clamp_min(1e-6))
    w = keep.float()  # (B, L)
    char_ce = -(m * log_a).sum(dim=(2, 3)) / m.sum(dim=(2, 3)).clamp_min(1.0)  # (B, L)
    chars = (char_ce * w).sum() / w.sum().clamp_min(1.0)
    n = w.sum(dim=1)  # (B,) kept slots per sample
    background = (1.0 - m.amax(dim=1)) * (n > 1).float()[:, None, None]  # (B, h, w); one slot: nothing to spread
    # KL(u ‖ Ā(p)) = −log n − (1/n)·Σ_i log Ā_i(p) over the kept slots i
    n_px = n.clamp_min(1.0)[:, None, None]  # (B, 1, 1)
    kl = -torch.log(n_px) - (w[:, :, None, None] * log_a).sum(dim=1) / n_px  # (B, h, w)
    per_sample = (kl * background).sum(dim=(1, 2)) / background.sum(dim=(1, 2)).clamp_min(1.0)  # (B,)
    has_bg = (background.sum(dim=(1, 2)) > 0).float()
    return chars + (per_sample * has_bg).sum() / has_bg.sum().clamp_min(1.0)


def align_loss(model_out: dict, form: str) -> torch.Tensor:
    """L_align: 1 − cos(H_t(ψ(c)), H_v(ξ(I_word))) (paper) or the symmetric InfoNCE over the batch (code)."""
    text, image = model_out["text_emb"], model_out["image_emb"]
    return _form(ALIGN_LOSSES, "align_form", form)(text, image, model_out["logit_scale"])


def _align_cosine(text, image, logit_scale):
    return (1.0 - F.cosine_similarity(text.float(), image.float(), dim=-1)).mean()


ALIGN_LOSSES = {"cosine": _align_cosine, "infonce": info_nce}
ATTN_LOSSES = {"mse": _attention_mse, "max_contrast": _attention_max_contrast, "ce": attention_ce}


def diffusion_losses(model_out: dict, batch: dict, step: int, cfg: DreamTextConfig) -> dict:
    """§4 + §5. Returns scalar tensors ``total`` (with grad), ``mask``, ``attn``, ``align``, ``id`` (the terms,
    detached), ``miou`` (predicted vs ground truth over real slots of samples with ground truth; NaN if none)
    and ``gt_frac`` (fraction of the batch supervised by ground-truth masks). The loss forms were checked when
    the config was loaded (``config_ranges.check_choices``) and a form no table knows is refused by ``_form``."""
    c = cfg.loss
    est = estimate_masks(model_out, batch, step, cfg)
    valid = batch["char_valid"] > 0.5  # (B, L)
    err = model_out["target"].float() - model_out["pred"].float()
    l_mask = mask_loss(err, est["masks"], valid, cfg)
    keep = valid & ~model_out["drop"].bool()[:, None]  # a dropped condition has nothing to attend to
    l_attn = attention_loss(est["agg"], est["masks"], keep, c.attn_form)
    zero = err.new_zeros(())
    l_align = align_loss(model_out, c.align_form) if c.beta > 0 else zero
    if c.beta > 0:
        logits = model_out["char_logits"].float()
        l_id = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["token_ids"].reshape(-1))
    else:
        l_id = zero
    total = l_mask + c.alpha * l_attn + c.beta * (l_align + l_id)
    miou = mask_iou(est["pred_masks"], est["gt_masks"], valid & est["has_gt"][:, None])
    return {
        "total": total,
        "mask": l_mask.detach(),
        "attn": l_attn.detach(),
        "align": l_align.detach(),
        "id": l_id.detach(),
        "miou": miou.detach().to(err.device),
        "gt_frac": est["use_gt"].float().mean(),
    }


def bare_diffusion_loss(model_out: dict) -> dict:
    """The plain ε-MSE, for the throughput baseline and for runs without DreamText's objective."""
    loss = (model_out["target"].float() - model_out["pred"].float()).pow(2).mean()
    return {"total": loss, "mask": loss.detach()}


class TrainingObjective(nn.Module):
    """The whole training objective as one module: ``forward(batch, step, generator=None) -> losses dict``.

    Wrap this (not the bare model) with ``accelerator.prepare`` so DDP sees a single forward. ``full=False``:
    the bare diffusion loss on the same model, without attention capture or the encoder heads.
    """

    def __init__(self, model, cfg: DreamTextConfig, full: bool = True):
        super().__init__()
        from ..diffusion.noise import NoiseProcess

        check_loss_config(cfg)
        self.model = model
        self.cfg = cfg
        self.full = full
        self.noise_process = NoiseProcess(cfg)
        self.recognition = None  # L_ocr (dreamtext.ocr_loss), with loss.ocr > 0: a frozen recogniser, not a submodule
        if full and cfg.loss.ocr > 0:
            from .ocr_loss import RecognitionLoss

            self.recognition = RecognitionLoss(cfg, self.noise_process.alphas_cumprod)

    def forward(self, batch: dict, step: int = 0, generator: torch.Generator | None = None) -> dict:
        drop = None if self.training else torch.zeros(batch["token_ids"].shape[0], dtype=torch.bool)
        out = run_model(self.model, self.noise_process, batch, self.cfg, generator=generator, drop=drop,
                        record=self.full, heads=self.full)
        if not self.full:
            return bare_diffusion_loss(out)
        losses = diffusion_losses(out, batch, step, self.cfg)
        if self.recognition is not None:
            # L = ... + λ_ocr·L_ocr: the recogniser reads x̂0, the gradient reaches the UNet through it only.
            x0_hat = self.model.decode_latent(self.noise_process.predict_x0(out["z_t"], out["pred"], out["t"]))
            l_ocr, _ = self.recognition(x0_hat, batch["mask"], batch["token_ids"], out["t"], ~out["drop"].bool())
            losses["total"] = losses["total"] + self.cfg.loss.ocr * l_ocr
            losses["ocr"] = l_ocr.detach()
        return losses
