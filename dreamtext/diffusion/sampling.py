"""Samplers with classifier-free guidance over diffusers schedulers (DESIGN §2, §7).

``sample`` runs the reverse process of an inpainting denoiser: it draws
``z_T`` from the seeded generator, and at every timestep of a diffusers
scheduler (made by :func:`dreamtext.diffusion.make_scheduler`: DDIM, Euler,
DPM-Solver++) evaluates the condition and its zeroed twin in **one** batched
forward pass and combines them with classifier-free guidance

    ε = ε_u + s · (ε_c − ε_u)                                   (§2)

The known part of the crop stays consistent because the denoiser sees it as
its input ``concat(z_t, m, E(I ⊙ (1 − m)))`` at every step; the pipeline then
pastes only the region (plus a feather band) back into the photograph.

Restart sampling (Xu et al. 2023; ``cfg.sample.restarts``): after the pass
reaches t = 0, its result z_0 is noised again with q(z_t | z_0) to the first of
the last ``int(steps · restart_strength)`` timesteps and sampled down again, as
img2img does with its ``strength``; repeated ``restarts`` times.

On the last ``attn_frac`` of the steps of the last pass the character
cross-attention of the conditional half is recorded and averaged into Ā (§3),
from which the per-character masks are predicted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError


@dataclass
class SampleOutput:
    """``x0``: (B, 3, H, W) in [-1, 1] (decoded); ``attn``: Ā (B, L, h', w') or None."""

    x0: torch.Tensor
    attn: torch.Tensor | None = None

    def char_masks(self) -> torch.Tensor:
        """The §3 per-character masks from Ā: bool (B, L, h', w')."""
        from ..model.char_masks import predict_char_masks

        if self.attn is None:
            raise ValueError("no attention was recorded: call sample_with_attention")
        return predict_char_masks(self.attn)


def uncond_twin(cond: dict) -> dict:
    """The condition with the whole text condition dropped, exactly as CFG dropout does in training (§2).

    The context becomes all zeros and every slot attendable (``context_mask``
    all true, as :meth:`DreamTextModel.context_from_hidden` sets a dropped row),
    so the unconditional branch does not see the text's length. The region
    mask, the masked image and the glyph prior describe the crop, not the text
    condition, and stay.
    """
    twin = dict(cond)
    twin["context"] = torch.zeros_like(cond["context"])
    if "context_mask" in cond:
        twin["context_mask"] = torch.ones_like(cond["context_mask"], dtype=torch.bool)
    return twin


def cat_cond(a: dict, b: dict) -> dict:
    """Two conditions stacked along the batch: every tensor value is concatenated."""
    out = {}
    for key, value in a.items():
        out[key] = torch.cat([value, b[key]]) if torch.is_tensor(value) else value
    return out


def _latent_shape(model, batch: int) -> tuple[int, ...]:
    cfg = model.cfg
    return (batch, cfg.latent_channels, *cfg.latent_size)


@torch.no_grad()
def sample_with_attention(model, cond: dict, scheduler, steps: int, guidance: float,
                          generator: torch.Generator | list | None = None, *, attn_frac: float | None = None,
                          z_T: torch.Tensor | None = None, progress=None, restarts: int | None = None,
                          restart_strength: float | None = None) -> SampleOutput:
    """Run the sampler and return the decoded image with Ā averaged over the final steps.

    ``cond`` is ``model.make_cond(...)`` for B crops; ``guidance`` is the CFG scale
    ``s`` (1 disables the unconditional pass); ``generator`` seeds ``z_T``, any
    stochastic scheduler noise and the restarts' noise, so the same seed gives
    bit-identical results on the same machine. A list of B generators gives each
    crop its own (:func:`draw_noise`), so a crop's noise does not depend on the
    crops batched with it. ``restarts`` / ``restart_strength``
    (default ``cfg.sample``): after the full pass, noise the result back up to
    ``restart_strength`` of the schedule and sample down again, ``restarts`` times
    (:class:`~dreamtext.config.SampleConfig`). Ā comes from the last pass.
    ``progress`` is an optional callable ``(step, total)`` over all passes.
    """
    cfg = model.cfg
    restarts = cfg.sample.restarts if restarts is None else restarts
    restart_strength = cfg.sample.restart_strength if restart_strength is None else restart_strength
    check_sampling(steps, guidance, restarts, restart_strength)
    attn_frac = cfg.sample.attn_frac if attn_frac is None else attn_frac
    batch = cond["mask"].shape[0]
    device = cond["mask"].device
    restart_steps = restart_step_count(steps, restart_strength)
    total = steps + restarts * restart_steps
    use_cfg = guidance != 1.0
    # [conditional; unconditional] in one batch of 2B: one UNet call per step.
    cond_in = cat_cond(cond, uncond_twin(cond)) if use_cfg else cond
    step_kwargs = _step_kwargs(scheduler, cfg, generator)

    def run_pass(z: torch.Tensor, timesteps: torch.Tensor, frac: float, done: int):
        report = None if progress is None else (lambda i: progress(done + i, total))
        return _denoise(model, z, timesteps, scheduler, cond_in, guidance if use_cfg else None, batch,
                        step_kwargs, frac, report)

    scheduler.set_timesteps(steps, device=device)
    if z_T is None:
        z_T = draw_noise(_latent_shape(model, batch), generator)
    z, attn = run_pass(z_T.to(device) * scheduler.init_noise_sigma, scheduler.timesteps,
                       0 if restarts else attn_frac, 0)
    for k in range(restarts):
        # img2img's convention (diffusers' get_timesteps): the last int(steps · strength) timesteps of a fresh
        # `steps`-step schedule, the scheduler told where it starts (Euler / DPM++ keep a step index).
        scheduler.set_timesteps(steps, device=device)
        start = steps - restart_steps
        timesteps = scheduler.timesteps[start * scheduler.order:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start * scheduler.order)
        noise = draw_noise(z.shape, generator).to(device)
        z = scheduler.add_noise(z, noise, timesteps[:1])  # the forward process q(z_t | z_0) from the pass's result
        z, attn = run_pass(z, timesteps, attn_frac if k == restarts - 1 else 0, steps + k * restart_steps)
    x0 = model.decode_latent(z).clamp(-1, 1)
    return SampleOutput(x0=x0, attn=attn)


def _denoise(model, z: torch.Tensor, timesteps: torch.Tensor, scheduler, cond_in: dict, guidance: float | None,
             batch: int, step_kwargs: dict, attn_frac: float, on_step=None):
    """One pass of the reverse process over ``timesteps`` → (z, Ā of its last ``attn_frac`` steps or None).

    ``guidance`` None: ``cond_in`` is the condition alone (no CFG); else [conditional; unconditional].
    ``on_step(i)`` is called after the i-th step (1-based).
    """
    n_record = 0 if attn_frac <= 0 else max(1, round(attn_frac * len(timesteps)))
    store = getattr(model, "attention_store", None)
    attn_sum, attn_count = None, 0
    for i, t in enumerate(timesteps):
        record = store is not None and i >= len(timesteps) - n_record
        if store is not None:
            store.reset()
            store.active = record
        z_in = scheduler.scale_model_input(z, t)
        z_in = torch.cat([z_in, z_in]) if guidance is not None else z_in
        t_in = t.reshape(1).expand(z_in.shape[0]).to(z.device)
        eps = model(z_in, t_in, cond_in)
        if guidance is not None:
            eps_c, eps_u = eps.chunk(2)
            eps = eps_u + guidance * (eps_c - eps_u)  # classifier-free guidance (§2)
        if record:
            a_bar = _aggregate(model, store.maps(), batch)  # (B, L, h', w')
            attn_sum = a_bar if attn_sum is None else attn_sum + a_bar
            attn_count += 1
        z = scheduler.step(eps, t, z, **step_kwargs).prev_sample
        if on_step is not None:
            on_step(i + 1)
    if store is not None:
        store.active = False
        store.reset()
    return z, (attn_sum / attn_count if attn_count else None)


def draw_noise(shape, generator) -> torch.Tensor:
    """Standard normal float32 noise of ``shape`` (B, ...) on the CPU (the same numbers on any device).

    ``generator``: one ``torch.Generator`` (or None) for the whole batch, or a list of B, item i
    drawn from ``generator[i]`` — items that share a generator draw from it in batch order.
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ConfigError(f"{len(generator)} generators for a batch of {shape[0]}: give one per item")
        return torch.cat([torch.randn((1, *shape[1:]), generator=g, dtype=torch.float32) for g in generator])
    return torch.randn(shape, generator=generator, dtype=torch.float32)


def restart_step_count(steps: int, strength: float) -> int:
    """UNet calls of one restart pass: img2img's int(steps · strength), at least one."""
    return max(1, min(steps, int(steps * strength)))


def check_sampling(steps: int, guidance: float, restarts: int, restart_strength: float) -> None:
    """Raise :class:`ConfigError` for sampling settings no sampler accepts (the limits of dreamtext.sample_options)."""
    from ..sample_options import MAX_GUIDANCE, MAX_RESTARTS, MAX_STEPS

    if not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    if not 0 <= guidance <= MAX_GUIDANCE:
        raise ConfigError(f"guidance must be from 0 to {MAX_GUIDANCE:g}, got {guidance}")
    if not 0 <= restarts <= MAX_RESTARTS:
        raise ConfigError(f"restarts must be from 0 to {MAX_RESTARTS}, got {restarts}")
    if not 0 < restart_strength <= 1:
        raise ConfigError(f"restart_strength must be in (0, 1], got {restart_strength}")


def sample(model, cond: dict, scheduler, steps: int, guidance: float,
           generator: torch.Generator | None = None, **kwargs) -> torch.Tensor:
    """The decoded samples x0: (B, 3, H, W) in [-1, 1] (no attention recorded)."""
    return sample_with_attention(model, cond, scheduler, steps, guidance, generator, attn_frac=0, **kwargs).x0


def _aggregate(model, maps: list, batch: int) -> torch.Tensor:
    """Ā of the conditional half: the §3 resize + blur + layer mean (DESIGN §3)."""
    from ..model.char_masks import aggregate_maps

    cfg = model.cfg
    maps = [m[:batch].float() for m in maps]
    out_hw = tuple(cfg.loss.mask_res) if cfg.loss.mask_res else tuple(cfg.latent_size)
    return aggregate_maps(maps, cfg.loss.s_min, out_hw)


def _step_kwargs(scheduler, cfg, generator) -> dict:
    """Keyword arguments of ``scheduler.step`` that make it seeded (and DDIM's η)."""
    import inspect

    params = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if "generator" in params:
        kwargs["generator"] = generator
    if "eta" in params:
        kwargs["eta"] = cfg.sample.eta
    return kwargs
