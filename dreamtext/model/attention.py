"""Recording the character cross-attention during the ordinary forward pass (DESIGN §3).

``CharCrossAttnProcessor`` is a diffusers attention processor for the
character cross-attention (``attn2`` of every ``BasicTransformerBlock``). It
computes exactly what diffusers' ``AttnProcessor`` computes — the
post-softmax probabilities are needed anyway — and, while its
``AttentionStore`` is active, keeps those probabilities averaged over heads,
with their autograd graph, for the §3 masks and the §4 attention loss. There
is no second forward pass.

Padding slots are masked out of the softmax by the additive bias diffusers
builds from ``encoder_attention_mask`` ((1 − mask)·(−10000), added before the
softmax): exp(−10000) underflows to exactly 0 in float32 and bfloat16, so the
padding slots receive no probability mass. ``DreamTextModel`` passes that mask
when ``cfg.unet.mask_padding`` (off = the released code's behaviour).

Which layers record: only ``attn2``. With ``only_cross_attention=True`` (the
tiny preset) diffusers turns ``attn1`` into a second cross-attention over the
same context instead of a self-attention (see docs/model.md); ``attn1`` then
runs with PyTorch's fused SDPA kernel and is not recorded, so the maps of §3
always come from the one character cross-attention per block, in both presets.
"""

from __future__ import annotations

import math

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0


class AttentionStore:
    """Holds the heads-averaged cross-attention maps of the current forward pass.

    ``record`` is called by the processors in forward order; ``maps()`` returns
    a list of (B, L, h_l, w_l) tensors (with their autograd graph), one per
    recorded layer. ``active`` switches recording on and off; ``reset()``
    empties the store (call it before every forward pass that records).
    ``latent_hw`` is the UNet's input resolution (h, w): a layer with N query
    pixels has the shape (h/f, w/f) with f = sqrt(h·w/N).
    """

    def __init__(self, latent_hw: tuple[int, int]):
        self.latent_hw = tuple(int(v) for v in latent_hw)
        self.active = False
        self._maps: list[torch.Tensor] = []
        self.names: list[str] = []

    def reset(self) -> None:
        self._maps = []
        self.names = []

    def maps(self) -> list[torch.Tensor]:
        return list(self._maps)

    def map_shape(self, n_pixels: int) -> tuple[int, int]:
        h, w = self.latent_hw
        f = math.sqrt(h * w / n_pixels)
        hl, wl = round(h / f), round(w / f)
        if hl * wl != n_pixels:
            raise ValueError(f"cannot place {n_pixels} attention pixels on a grid of aspect {h}:{w}")
        return hl, wl

    def record(self, name: str, probs: torch.Tensor, heads: int) -> None:
        """probs: post-softmax (B·heads, h·w, L) → stored as the heads-average (B, L, h, w)."""
        bh, n, L = probs.shape
        hl, wl = self.map_shape(n)
        avg = probs.reshape(bh // heads, heads, n, L).mean(dim=1)  # (B, h·w, L)
        self._maps.append(avg.transpose(1, 2).reshape(bh // heads, L, hl, wl))
        self.names.append(name)


class CharCrossAttnProcessor:
    """diffusers' ``AttnProcessor`` computation for a cross-attention layer, recording its probabilities."""

    def __init__(self, store: AttentionStore, name: str = ""):
        self.store = store
        self.name = name

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 context_mask: torch.Tensor | None = None, *args, **kwargs):
        # ``context_mask`` is for the other layers (ContextMaskedAttnProcessor); attn2 gets its padding bias from
        # diffusers' encoder_attention_mask as ``attention_mask``.
        # The body follows diffusers.models.attention_processor.AttnProcessor line for line so that the output
        # is bit-identical; the only addition is the store.record call.
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        query = attn.head_to_batch_dim(query)
        key = attn.head_to_batch_dim(key)
        value = attn.head_to_batch_dim(value)

        attention_probs = attn.get_attention_scores(query, key, attention_mask)  # (B·heads, h·w, L)
        if self.store.active:
            self.store.record(self.name, attention_probs, attn.heads)

        hidden_states = torch.bmm(attention_probs, value)
        hidden_states = attn.batch_to_head_dim(hidden_states)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


class ContextMaskedAttnProcessor:
    """Every attention other than attn2: PyTorch's fused SDPA (diffusers' ``AttnProcessor2_0``).

    In a cross-attention ``attn1`` (``only_cross_attention=True``) diffusers passes the UNet's ``attention_mask``,
    not the encoder mask, so the padding bias is built here from ``context_mask`` (B, L) bool (True = attend),
    handed in through ``cross_attention_kwargs``. Self-attention layers ignore it.
    """

    def __init__(self):
        self.inner = AttnProcessor2_0()

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 context_mask: torch.Tensor | None = None, *args, **kwargs):
        if context_mask is not None and encoder_hidden_states is not None and attn.is_cross_attention:
            # The same additive bias diffusers builds for encoder_attention_mask: (1 − mask)·(−10000), (B, 1, L).
            attention_mask = ((1 - context_mask.to(hidden_states.dtype)) * -10000.0)[:, None, :]
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


def is_char_cross_attention(processor_name: str) -> bool:
    """``down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor`` → True (the block's cross-attention)."""
    return processor_name.endswith("attn2.processor")


def install_attention_processors(unet, store: AttentionStore) -> int:
    """Give every ``attn2`` a recording processor and every other attention the fused SDPA one; returns the count."""
    processors = {}
    n = 0
    for name in unet.attn_processors:
        if is_char_cross_attention(name):
            processors[name] = CharCrossAttnProcessor(store, name.removesuffix(".processor"))
            n += 1
        else:
            processors[name] = ContextMaskedAttnProcessor()
    unet.set_attn_processor(processors)
    return n
