"""DreamTextModel: ψ + the inpainting UNet with character cross-attention (+ the VAE for sd2) (DESIGN §2, §9, §12).

The denoiser input is ``concat(z_t, m, E(I ⊙ (1 − m)) [, glyph])`` with shape
(B, cfg.unet_in_channels, h, w); the cross-attention context is ψ(c) (B, L, d)
with the padding slots masked out of the softmax when ``cfg.unet.mask_padding``.
The conditioning travels as a dict (k-diffusion style), built by ``make_cond``:

    context (B, L, d)   context_mask (B, L) bool   mask (B, 1, h, w)
    masked (B, C, h, w) glyph (B, 1, h, w) (only with cfg.glyph_prior)
    style (B, C + 1, h, w) (only with cfg.style_ref: E(I_ref)·r and r, r = 1 where a reference is given)

Classifier-free guidance drop (§2): a dropped row's context is all zeros and
its context_mask all true, so the unconditional branch does not even see the
length of the text.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DreamTextConfig
from ..errors import ConfigError, ImageError
from .attention import AttentionStore, install_attention_processors
from .text_encoder import TextEncoder
from .unet import build_unet, build_vae, char_attn_parameters, load_sd2_unet, load_vae


class DreamTextModel(nn.Module):
    def __init__(self, cfg: DreamTextConfig, load_base: bool = True):
        """``load_base``: for a latent preset with ``cfg.unet.base_path``, load the SD2 weights (False when a
        checkpoint will overwrite them anyway; the VAE is still read from the base directory).

        A latent preset without a base path (a converted release, ``dreamtext convert``) is built from the
        config alone — UNet from ``cfg.unet``, VAE from ``cfg.vae`` — when its weights come from elsewhere: a
        checkpoint (``load_base=False``) or a fine-tune's ``train.init_from``."""
        super().__init__()
        self.cfg = cfg
        from_config = cfg.latent and not cfg.unet.base_path
        if from_config and load_base and not cfg.train.init_from:
            raise ConfigError("the latent (sd2) preset needs unet.base_path: a local diffusers-format "
                              "SD2-inpainting directory with unet/, vae/ and scheduler/ (or train.init_from: "
                              "a converted or trained model whose weights the network starts from)")
        self.text_encoder = TextEncoder(cfg)
        self.vae = None
        if from_config:
            self.unet = build_unet(cfg)
            self.vae = build_vae(cfg)
            self.latent_scale = float(cfg.vae.scaling_factor)
        elif cfg.latent:
            self.unet = load_sd2_unet(cfg, cfg.unet.base_path, load_weights=load_base)
            self.vae = load_vae(cfg.unet.base_path)
            self.latent_scale = float(getattr(self.vae.config, "scaling_factor", 0.18215))
        else:
            self.unet = build_unet(cfg)
        self.attention_store = AttentionStore(cfg.latent_size)
        self.n_recorded_layers = install_attention_processors(self.unet, self.attention_store)

    # ----- conditioning
    def context_from_hidden(self, hidden: torch.Tensor, token_ids: torch.Tensor,
                            drop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ψ(c) (B, L, d) → (context, context_mask) with the CFG drop applied to the rows where ``drop``."""
        context_mask = token_ids != 0
        if drop is not None:
            drop = drop.to(torch.bool).to(hidden.device)
            hidden = hidden * (~drop).to(hidden.dtype)[:, None, None]
            context_mask = context_mask | drop[:, None]
        return hidden, context_mask

    def encode_text(self, token_ids: torch.Tensor, drop: torch.Tensor | None = None):
        """token ids (B, L) → context (B, L, d), context_mask (B, L) bool (True = a real character slot)."""
        return self.context_from_hidden(self.text_encoder(token_ids), token_ids, drop)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → z (B, C, h, w): identity in pixel space, the VAE posterior mean otherwise."""
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != tuple(self.cfg.image_size):
            raise ImageError(f"images must be (B, 3, {self.cfg.image_size[0]}, {self.cfg.image_size[1]}), "
                             f"got {tuple(x.shape)}")
        if self.vae is None:
            return x
        with torch.no_grad():
            return self.vae.encode(x.to(self.vae.dtype)).latent_dist.mean * self.latent_scale

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, C, h, w) → (B, 3, H, W) in about [-1, 1]."""
        if self.vae is None:
            return z
        return self.vae.decode(z.to(self.vae.dtype) / self.latent_scale).sample

    def _to_latent_res(self, m: torch.Tensor, mode: str) -> torch.Tensor:
        hw = tuple(self.cfg.latent_size)
        if tuple(m.shape[-2:]) == hw:
            return m
        return F.interpolate(m, size=hw, mode=mode)

    def make_cond(self, batch: dict, drop: torch.Tensor | None = None, hidden: torch.Tensor | None = None) -> dict:
        """The conditioning dict from a batch with ``token_ids``, ``mask``, ``masked_image`` [, ``glyph``].

        ``hidden``: ψ(token_ids) when the caller already computed it (the training losses reuse it).
        """
        token_ids = batch["token_ids"]
        if hidden is None:
            hidden = self.text_encoder(token_ids)
        context, context_mask = self.context_from_hidden(hidden, token_ids, drop)
        cond = {
            "context": context,
            "context_mask": context_mask,
            "mask": self._to_latent_res(batch["mask"].float(), "nearest"),
            "masked": self.encode_image(batch["masked_image"].float()),
        }
        if self.cfg.glyph_prior:
            if batch.get("glyph") is None:
                raise ConfigError("glyph_prior is on, but the batch has no 'glyph' (the rendered target string)")
            cond["glyph"] = self._to_latent_res(batch["glyph"].float(), "area")
        if self.cfg.style_ref:
            cond["style"] = self.style_input(batch, cond["mask"])
        return cond

    def style_input(self, batch: dict, mask: torch.Tensor) -> torch.Tensor:
        """The style reference's input channels (DESIGN §13): (B, C + 1, h, w) = concat(E(I_ref)·r, r).

        ``batch["style"]`` (B, 3, H, W) is the region's original pixels (the old word, unmasked) and
        ``batch["has_style"]`` (B,) says which rows have one; a batch without them has none (all zeros, r = 0:
        what a start from a model without the reference computes, since its channels start at zero).
        """
        b = mask.shape[0]
        has = batch.get("has_style")
        if batch.get("style") is None or has is None:
            return torch.zeros((b, self.cfg.latent_channels + 1) + tuple(mask.shape[-2:]), device=mask.device)
        r = torch.as_tensor(has, dtype=torch.float32, device=mask.device).reshape(b, 1, 1, 1)
        z = self.encode_image(batch["style"].float()) * r
        return torch.cat([z, r.expand(b, 1, *mask.shape[-2:])], dim=1)

    # ----- denoiser
    def unet_input(self, z_t: torch.Tensor, cond: dict) -> torch.Tensor:
        parts = [z_t, cond["mask"].to(z_t.dtype), cond["masked"].to(z_t.dtype)]
        if self.cfg.glyph_prior:
            parts.append(cond["glyph"].to(z_t.dtype))
        if self.cfg.style_ref:
            parts.append(cond["style"].to(z_t.dtype))
        return torch.cat(parts, dim=1)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, cond: dict) -> torch.Tensor:
        """ε̂ (B, C, h, w). Records the character cross-attention when ``attention_store.active``."""
        kwargs = {}
        if self.cfg.unet.mask_padding:
            keep = cond["context_mask"].to(z_t.dtype)  # (B, L), 1 = attend
            kwargs["encoder_attention_mask"] = keep
            if self.cfg.unet.only_cross_attention:
                # attn1 is a cross-attention too, but diffusers hands it the UNet's `attention_mask`, not the
                # encoder mask (and the mid block's attn1 stays a self-attention): its processor builds the bias.
                kwargs["cross_attention_kwargs"] = {"context_mask": cond["context_mask"]}
        if t.ndim == 0:
            t = t.expand(z_t.shape[0])
        return self.unet(self.unet_input(z_t, cond), t, encoder_hidden_states=cond["context"], **kwargs).sample

    # ----- what the diffusion training updates (§9)
    def trainable_parameters(self) -> list[nn.Parameter]:
        """Set ``requires_grad`` per cfg.unet.trainable / cfg.text.train_during_diffusion; return those parameters.

        unet.trainable: "all", or "char_attn" (each transformer block's cross-attention attn2 and its norm2 —
        chosen by module, so no ResNet norm2 — plus conv_in when the glyph prior or the style reference adds
        channels to a pretrained UNet). text.train_during_diffusion: "all", "none", or "last:N"
        (ψ's last N transformer layers, its final norm, the heads H_l/H_t/H_v and the temperature;
        the ViT trunk ξ stays frozen). The VAE never trains, nor does anything the objective does not use
        (H_pos; τ unless loss.align_form=infonce; the encoder heads and ξ when loss.beta=0), so that every
        trainable parameter gets a gradient every step (DDP without find_unused_parameters).
        """
        self.requires_grad_(False)
        mode = self.cfg.unet.trainable
        if mode == "all":
            self.unet.requires_grad_(True)
        elif mode == "char_attn":
            for p in char_attn_parameters(self.unet).values():
                p.requires_grad_(True)
            if self.cfg.glyph_prior or self.cfg.style_ref:
                self.unet.conv_in.requires_grad_(True)
        else:
            raise ConfigError(f"unet.trainable must be 'all' or 'char_attn', got {mode!r}")
        te = self.text_encoder
        spec = self.cfg.text.train_during_diffusion
        if spec == "all":
            te.requires_grad_(True)
        elif spec == "none":
            pass
        elif spec.startswith("last:") and spec[5:].isdigit():
            n = int(spec[5:])
            layers = list(te.blocks.layers)
            for layer in layers[max(0, len(layers) - n):]:
                layer.requires_grad_(True)
            for m in (te.norm, te.char_head, te.pos_head, te.text_proj, te.image_proj):
                m.requires_grad_(True)
            te.logit_scale.requires_grad_(True)
        else:
            raise ConfigError(f"text.train_during_diffusion must be 'all', 'none' or 'last:N', got {spec!r}")
        # Parameters the diffusion objective never touches stay frozen, so DDP needs no find_unused_parameters:
        # H_pos (pre-training only), τ (only the InfoNCE form of L_align), and with β = 0 every encoder head.
        te.pos_head.requires_grad_(False)
        if self.cfg.loss.align_form != "infonce" or self.cfg.loss.beta == 0:
            te.logit_scale.requires_grad_(False)
        if self.cfg.loss.beta == 0:
            for m in (te.char_head, te.text_proj, te.visual, te.image_proj):
                m.requires_grad_(False)
        return [p for p in self.parameters() if p.requires_grad]


def widen_for_style_ref(tensors: dict[str, torch.Tensor], cfg: DreamTextConfig) -> dict[str, torch.Tensor]:
    """A state dict of a model without the style reference → one that loads into ``cfg``'s with it (§13).

    The reference's C + 1 input channels come last in ``unet_input``, so ``conv_in``'s weight gains that many
    input channels at the end, all zero: the widened model computes exactly what the original computes
    whatever the reference holds, and fine-tuning starts from there. Other tensors pass unchanged; a
    ``conv_in`` that is already wide enough passes unchanged too.
    """
    key = "unet.conv_in.weight"
    w = tensors.get(key)
    extra = cfg.latent_channels + 1
    if not cfg.style_ref or w is None or w.shape[1] != cfg.unet_in_channels - extra:
        return tensors
    pad = torch.zeros(w.shape[0], extra, *w.shape[2:], dtype=w.dtype)
    return {**tensors, key: torch.cat([w, pad], dim=1)}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
