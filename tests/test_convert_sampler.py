"""The release's sampler (sgm's EulerEDMSampler over LegacyDDPMDiscretization, s_churn 0) as ``euler-edm``.

The reference below is the release's algorithm written out (float64 betas, its 50 timesteps, its starting
noise √(1 + σ_0²), the denoiser's nearest-sigma timestep, x̂0 = z − σε̂ and an Euler step in σ); our scheduler,
driven the way ``diffusion.sampling`` drives every scheduler, must land on the same latent.
"""

import numpy as np
import pytest
import torch

from dreamtext.config import SAMPLERS, load_config
from dreamtext.diffusion.noise import SCHEDULERS, make_scheduler
from dreamtext.errors import ConfigError


def _eps(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A smooth stand-in denoiser: ε̂(z_in, t), with t entering too."""
    return 0.3 * torch.tanh(z) + 0.05 * torch.sin(z * 3 + float(t) / 100)


def sgm_euler_edm(z_T: torch.Tensor, steps: int) -> torch.Tensor:
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alpha_bar = np.cumprod(1 - betas.numpy())
    table = torch.tensor(((1 - alpha_bar) / alpha_bar) ** 0.5, dtype=torch.float32)  # σ of timestep t
    ts = np.linspace(999, 0, steps, endpoint=False).astype(int)  # generate_roughly_equally_spaced_steps, reversed
    sigmas = torch.cat([table[ts], torch.zeros(1)])
    x = z_T * torch.sqrt(1.0 + sigmas[0] ** 2.0)
    for i in range(steps):
        sigma = sigmas[i]
        t = torch.argmin((table - sigma).abs())  # DiscreteDenoiser.sigma_to_idx → c_noise
        denoised = x - sigma * _eps(x / torch.sqrt(sigma ** 2 + 1), t)  # EpsScaling: c_in, c_out = −σ
        x = x + (sigmas[i + 1] - sigma) * (x - denoised) / sigma  # to_d, Euler step
    return x


@pytest.mark.parametrize("steps", [50, 7])
def test_euler_edm_is_the_released_sampler(steps):
    cfg = load_config("sd2")
    scheduler = make_scheduler(cfg, "euler-edm")
    scheduler.set_timesteps(steps)
    z_T = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    z = z_T * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        z = scheduler.step(_eps(scheduler.scale_model_input(z, t), t), t, z).prev_sample
    ref = sgm_euler_edm(z_T, steps)
    assert torch.allclose(z, ref, rtol=1e-4, atol=1e-4), float((z - ref).abs().max())
    if steps == 50:
        assert [int(t) for t in scheduler.timesteps[:3]] == [999, 979, 959] and int(scheduler.timesteps[-1]) == 19


def test_samplers_are_a_registry_and_the_sd2_preset_samples_as_the_paper():
    assert tuple(SCHEDULERS) == SAMPLERS and "euler-edm" in SAMPLERS
    cfg = load_config("sd2")
    assert (cfg.sample.sampler, cfg.sample.steps, cfg.sample.guidance, cfg.sample.restarts) == ("euler-edm", 50, 5.0, 0)
    for name in SAMPLERS:  # every other sampler stays available for the same model
        assert make_scheduler(cfg, name).config.num_train_timesteps == 1000
    with pytest.raises(ConfigError, match="unknown sampler 'heun'"):
        make_scheduler(cfg, "heun")
    plain = make_scheduler(cfg, "euler")
    plain.set_timesteps(50)
    edm = make_scheduler(cfg, "euler-edm")
    edm.set_timesteps(50)
    assert float(edm.init_noise_sigma) > float(plain.sigmas.max())  # √(1 + σ²), not σ
