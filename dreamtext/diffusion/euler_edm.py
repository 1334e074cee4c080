"""The released DreamText / UDiffText sampler as a diffusers scheduler (``sample.sampler = "euler-edm"``).

The release samples with sgm's ``EulerEDMSampler`` (``s_churn = 0``: no added noise) over
``LegacyDDPMDiscretization`` through a ``DiscreteDenoiser`` with ``EpsScaling``:

- sigmas σ_i = √((1 − ᾱ_t)/ᾱ_t) at the timesteps t_i = 999 − 20·i of the 1000-step LDM schedule
  (β from 0.00085 to 0.012 on the sqrt-linear grid = diffusers' ``scaled_linear``) for 50 steps
  (``generate_roughly_equally_spaced_steps``), then σ = 0;
- the UNet sees z / √(σ² + 1) at timestep t_i (``c_in``, ``c_noise`` = the index of the nearest sigma);
- x̂0 = z − σ·ε̂ (``c_skip = 1``, ``c_out = −σ``), and CFG mixes the x̂0 of both branches — the same as mixing ε̂;
- one Euler step in σ: z ← z + (σ_{i+1} − σ_i)·(z − x̂0)/σ_i;
- the start: z_T = ε·√(1 + σ_0²) (``prepare_sampling_loop``).

diffusers' ``EulerDiscreteScheduler`` with ``timestep_spacing="trailing"`` takes the same timesteps
(round(arange(1000, 0, −1000/n)) − 1), the same sigmas, input scaling and step; only its starting noise differs
(σ_0 instead of √(1 + σ_0²) for "trailing"), which this subclass puts back.
"""

from __future__ import annotations

from diffusers import EulerDiscreteScheduler


class EulerEDMScheduler(EulerDiscreteScheduler):
    """``EulerDiscreteScheduler`` whose initial noise is scaled by √(1 + σ_max²), as sgm's EDM samplers do."""

    @property
    def init_noise_sigma(self):
        max_sigma = max(self.sigmas) if isinstance(self.sigmas, list) else self.sigmas.max()
        return (max_sigma**2 + 1) ** 0.5
