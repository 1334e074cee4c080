"""The character-level text encoder ψ, its heads, the visual encoder ξ and their pre-training loss (DESIGN §2).

ψ (UDiffText's "label encoder"): character embedding + fixed sinusoidal
position encoding + a transformer encoder (pre-norm with a final LayerNorm by default; the
released LabelEncoder's post-norm ReLU layers with ``text.norm_first`` / ``final_norm`` false) → one vector
per character slot, (B, L, d). That sequence is the UNet's cross-attention context.

Heads used by the losses (§4) and the pre-training (§2):

- ``char_logits``  H_l:   (B, L, d) → (B, L, 95)  per-slot character classifier (0 = padding)
- ``pos_logits``   H_pos: (B, L, d) → (B, L, L)   per-slot position classifier
- ``text_embed``   H_t:   mean of ψ over the real slots → (B, proj), L2-normalised
- ``image_embed``  H_v∘ξ: a small ViT over the grayscale word crop → (B, proj), L2-normalised
- ``logit_scale``: learnable log(1/τ) of the CLIP-style contrastive loss

Pre-training loss: symmetric InfoNCE(H_t, H_v) + 0.1·CE(H_l) + 0.1·CE(H_pos).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..charset import VOCAB_SIZE
from ..config import DreamTextConfig
from ..errors import ImageError, TextError


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The Transformer's fixed position encoding: (length, dim), sin on even and cos on odd channels."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


def _transformer(dim: int, layers: int, heads: int, ff_dim: int = 0, activation: str = "gelu",
                 norm_first: bool = True) -> nn.TransformerEncoder:
    """``layers`` PyTorch encoder layers over (B, N, dim); ``ff_dim`` 0: a 4·dim feed-forward."""
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=ff_dim or 4 * dim, dropout=0.0,
                                       activation=activation, batch_first=True, norm_first=norm_first)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class VisualEncoder(nn.Module):
    """ξ: a small ViT over the grayscale word crop (B, 1, hv, wv) in [-1, 1] → pooled (B, vis_dim)."""

    def __init__(self, cfg: DreamTextConfig):
        super().__init__()
        t = cfg.text
        hv, wv = t.vis_size
        if hv % t.vis_patch or wv % t.vis_patch:
            raise ValueError(f"text.vis_size {t.vis_size} is not a multiple of text.vis_patch {t.vis_patch}")
        self.vis_size = (hv, wv)
        n_patches = (hv // t.vis_patch) * (wv // t.vis_patch)
        self.patch = nn.Conv2d(1, t.vis_dim, kernel_size=t.vis_patch, stride=t.vis_patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, t.vis_dim))
        self.pos = nn.Parameter(torch.randn(1, n_patches + 1, t.vis_dim) * 0.02)
        self.blocks = _transformer(t.vis_dim, t.vis_layers, t.vis_heads)
        self.norm = nn.LayerNorm(t.vis_dim)

    def forward(self, word_crop: torch.Tensor) -> torch.Tensor:
        if word_crop.ndim != 4 or word_crop.shape[1] != 1 or tuple(word_crop.shape[2:]) != self.vis_size:
            raise ImageError(f"word crop must be (B, 1, {self.vis_size[0]}, {self.vis_size[1]}), "
                             f"got {tuple(word_crop.shape)}")
        x = self.patch(word_crop).flatten(2).transpose(1, 2)  # (B, N, vis_dim)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.norm(self.blocks(x)[:, 0])  # the class token, (B, vis_dim)


class TextEncoder(nn.Module):
    """ψ with the heads H_l, H_pos, H_t, the visual encoder ξ with H_v, and the temperature."""

    def __init__(self, cfg: DreamTextConfig):
        super().__init__()
        t = cfg.text
        if t.dim % t.heads:
            raise ValueError(f"text.dim {t.dim} is not divisible by text.heads {t.heads}")
        self.max_len = cfg.max_len
        self.embed = nn.Embedding(VOCAB_SIZE, t.dim)
        self.register_buffer("positions", sinusoidal_positions(cfg.max_len, t.dim), persistent=False)
        self.blocks = _transformer(t.dim, t.layers, t.heads, t.ff_dim, t.activation, t.norm_first)
        # The released LabelEncoder has no final norm (text.final_norm false): ψ is the last layer's output.
        self.norm = nn.LayerNorm(t.dim) if t.final_norm else nn.Identity()
        self.char_head = nn.Linear(t.dim, VOCAB_SIZE)  # H_l
        self.pos_head = nn.Linear(t.dim, cfg.max_len)  # H_pos
        self.text_proj = nn.Linear(t.dim, t.proj_dim)  # H_t
        self.visual = VisualEncoder(cfg)  # ξ
        self.image_proj = nn.Linear(t.vis_dim, t.proj_dim)  # H_v
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / t.init_temperature)))

    # ----- ψ
    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """ψ(c): token ids (B, L) int64 → (B, L, d). Padding slots get their own (position-dependent) vectors."""
        if token_ids.ndim != 2 or token_ids.shape[1] != self.max_len:
            raise TextError(f"token ids must be (B, {self.max_len}), got {tuple(token_ids.shape)}")
        if token_ids.numel() and (int(token_ids.min()) < 0 or int(token_ids.max()) >= VOCAB_SIZE):
            raise TextError(f"token ids must lie in 0..{VOCAB_SIZE - 1}")
        x = self.embed(token_ids) + self.positions.to(self.embed.weight.dtype)
        return self.norm(self.blocks(x))

    # ----- heads
    def char_logits(self, h: torch.Tensor) -> torch.Tensor:
        """H_l: (B, L, d) → (B, L, 95)."""
        return self.char_head(h)

    def pos_logits(self, h: torch.Tensor) -> torch.Tensor:
        """H_pos: (B, L, d) → (B, L, L)."""
        return self.pos_head(h)

    def text_embed(self, h: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        """H_t: mean of ψ over the real (non-padding) slots, projected and L2-normalised → (B, proj)."""
        real = (token_ids != 0).to(h.dtype)[..., None]  # (B, L, 1)
        pooled = (h * real).sum(1) / real.sum(1).clamp_min(1.0)
        return F.normalize(self.text_proj(pooled).float(), dim=-1)

    def image_embed(self, word_crop: torch.Tensor) -> torch.Tensor:
        """H_v(ξ(I_word)): grayscale word crop (B, 1, hv, wv) in [-1, 1] → (B, proj), L2-normalised."""
        return F.normalize(self.image_proj(self.visual(word_crop)).float(), dim=-1)

    # ----- pre-training (§2)
    def pretrain_loss(self, batch: dict) -> dict:
        """InfoNCE(H_t, H_v) + 0.1·CE_cls + 0.1·CE_pos on a batch with ``token_ids`` (B, L) and ``word_crop``.

        Returns scalar tensors ``loss``, ``infonce``, ``ce_cls``, ``ce_pos`` and ``retrieval_acc``
        (text→image top-1 over the batch, no gradient).
        """
        token_ids = batch["token_ids"]
        h = self(token_ids)
        text = self.text_embed(h, token_ids)
        image = self.image_embed(batch["word_crop"])
        nce = info_nce(text, image, self.logit_scale)
        B, L = token_ids.shape
        ce_cls = F.cross_entropy(self.char_logits(h).reshape(B * L, -1).float(), token_ids.reshape(-1))
        pos_target = torch.arange(L, device=token_ids.device).expand(B, L).reshape(-1)
        ce_pos = F.cross_entropy(self.pos_logits(h).reshape(B * L, -1).float(), pos_target)
        return {
            "loss": nce + 0.1 * ce_cls + 0.1 * ce_pos,
            "infonce": nce.detach(),
            "ce_cls": ce_cls.detach(),
            "ce_pos": ce_pos.detach(),
            "retrieval_acc": retrieval_accuracy(text.detach(), image.detach(), token_ids),
        }


def info_nce(text: torch.Tensor, image: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP loss over the batch: (CE(text→image) + CE(image→text)) / 2; inputs L2-normalised (B, P).

    The scale exp(logit_scale) is clamped at 100 as in CLIP.
    """
    logits = logit_scale.exp().clamp(max=100.0) * text.float() @ image.float().t()  # (B, B)
    target = torch.arange(text.shape[0], device=text.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


@torch.no_grad()
def retrieval_accuracy(text: torch.Tensor, image: torch.Tensor, token_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Text→image top-1 accuracy over a batch: the fraction of texts whose most similar image is their own.

    With ``token_ids``, retrieving another image of the same string also counts (a batch may hold a word twice).
    """
    best = (text.float() @ image.float().t()).argmax(dim=1)  # (B,)
    own = torch.arange(text.shape[0], device=text.device)
    hit = best == own
    if token_ids is not None:
        hit = hit | (token_ids[best] == token_ids).all(dim=1)
    return hit.float().mean()
