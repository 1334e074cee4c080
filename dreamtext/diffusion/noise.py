"""The noise process (training) and the samplers' schedulers, all from diffusers and one set of betas (§2, §7).

``NoiseProcess(cfg)`` wraps ``DDPMScheduler`` built from ``cfg.diffusion``:
``sample_timesteps``, ``add_noise`` (z_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε) and
``target`` (ε, or v for v-prediction). ``make_scheduler(cfg, name)`` gives a
fresh deterministic sampler scheduler with the same betas, built by ``SCHEDULERS[name]``: ``ddim`` (η = 0,
trailing timesteps), ``euler`` (Euler discrete, no churn), ``dpm++`` (DPM-Solver++ 2M) or ``euler-edm`` (the
released DreamText/UDiffText sampler, :mod:`dreamtext.diffusion.euler_edm`).
"""

from __future__ import annotations

import torch

from ..config import SAMPLERS, DreamTextConfig
from ..errors import ConfigError


def _ddpm_config(cfg: DreamTextConfig) -> dict:
    d = cfg.diffusion
    if d.prediction_type not in ("epsilon", "v_prediction"):
        raise ConfigError(f"diffusion.prediction_type must be 'epsilon' or 'v_prediction', got {d.prediction_type!r}")
    return dict(
        num_train_timesteps=d.num_train_timesteps,
        beta_schedule=d.beta_schedule,
        beta_start=d.beta_start,
        beta_end=d.beta_end,
        prediction_type=d.prediction_type,
        # Pixels live in [-1, 1] and may be clipped; VAE latents must not be.
        clip_sample=not cfg.latent,
    )


class NoiseProcess:
    """The forward (noising) process of training, over diffusers' DDPMScheduler."""

    def __init__(self, cfg: DreamTextConfig):
        from diffusers import DDPMScheduler

        try:
            self.scheduler = DDPMScheduler(**_ddpm_config(cfg))
        except (ValueError, NotImplementedError) as e:
            raise ConfigError(f"bad diffusion settings: {e}") from None
        self.num_train_timesteps = cfg.diffusion.num_train_timesteps
        self.prediction_type = cfg.diffusion.prediction_type

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t, (T,) float32."""
        return self.scheduler.alphas_cumprod

    def sample_timesteps(self, batch_size: int, generator: torch.Generator | None = None,
                         device: torch.device | str = "cpu") -> torch.Tensor:
        """Uniform integer timesteps (B,) in [0, T)."""
        t = torch.randint(0, self.num_train_timesteps, (batch_size,), generator=generator)
        return t.to(device)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.scheduler.add_noise(x0, noise, t)

    def predict_x0(self, z_t: torch.Tensor, pred: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The one-step estimate x̂0 of the clean sample from the model's prediction at timestep t (B,):
        ε: (z_t − √(1−ᾱ)·ε̂)/√ᾱ (DDPM eq. 15); v: √ᾱ·z_t − √(1−ᾱ)·v̂ (Salimans & Ho 2022); sample: the prediction."""
        a = self.alphas_cumprod.to(device=z_t.device, dtype=torch.float32)[t].reshape(-1, *([1] * (z_t.dim() - 1)))
        z_t, pred = z_t.float(), pred.float()
        if self.prediction_type == "epsilon":
            return (z_t - (1 - a).sqrt() * pred) / a.sqrt()
        if self.prediction_type == "v_prediction":
            return a.sqrt() * z_t - (1 - a).sqrt() * pred
        return pred

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the UNet regresses: ε, or v = √ᾱ·ε − √(1−ᾱ)·x0."""
        if self.prediction_type == "epsilon":
            return noise
        return self.scheduler.get_velocity(x0, noise, t)


def _ddim(base: dict):
    from diffusers import DDIMScheduler

    # "trailing" spacing (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed",
    # table 2): the first step is t = T − 1, where z_T ~ N(0, I) is what the model was trained to see.
    # diffusers' default "leading" starts 10 steps at t = 901, where the cosine schedule still expects
    # √ᾱ = 0.15 of signal in z_t that pure noise lacks (recon NED 0.919 → 0.886 at step 2,000, BENCHMARKS).
    return DDIMScheduler(**base, set_alpha_to_one=False, timestep_spacing="trailing")


def _without_clip(base: dict) -> dict:
    return {k: v for k, v in base.items() if k != "clip_sample"}


def _euler(base: dict):
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(**_without_clip(base), steps_offset=1)


def _dpmpp(base: dict):
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler(**_without_clip(base), algorithm_type="dpmsolver++", solver_order=2,
                                       steps_offset=1)


def _euler_edm(base: dict):
    from .euler_edm import EulerEDMScheduler

    return EulerEDMScheduler(**_without_clip(base), timestep_spacing="trailing")


# Sampler name (config.SAMPLERS) → builder of its scheduler from the DDPM settings of ``_ddpm_config``.
SCHEDULERS = {"ddim": _ddim, "euler": _euler, "dpm++": _dpmpp, "euler-edm": _euler_edm}
assert tuple(SCHEDULERS) == SAMPLERS, "config.SAMPLERS and the scheduler builders disagree"


def make_scheduler(cfg: DreamTextConfig, name: str | None = None):
    """A fresh sampler scheduler (one of ``SCHEDULERS``) with the training betas; deterministic."""
    name = name or cfg.sample.sampler
    build = SCHEDULERS.get(name)
    if build is None:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return build(_ddpm_config(cfg))
