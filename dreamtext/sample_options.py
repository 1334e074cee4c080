"""The sampling options of one edit, in one place: their defaults (the model's ``cfg.sample``), their limits and
their checks, for every entry point (Python API, ``dreamtext edit`` and ``--spec``, ``dreamtext eval``, the web
page, the sampler itself). An entry point may be stricter (the web page caps steps and candidates lower) but
never looser; a bad value is one ``ConfigError`` naming it and its range.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

from .config import BLEND_MODES, MASK_RULES, SAMPLERS, UPSCALE_MODES
from .config_ranges import MAX_CANDIDATES, MAX_GUIDANCE, MAX_RESTARTS, MAX_SEED, MAX_STEPS
from .errors import ConfigError


def _whole(value) -> bool:
    """A whole number (Python or NumPy integer), not a bool and not a float that happens to be whole."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class SampleOptions:
    """One edit's sampling: ``steps`` sampler steps with ``sampler``, classifier-free ``guidance``, ``restarts``
    restart passes at ``restart_strength``, ``blend`` paste-back, ``mask_rule`` for the returned masks,
    ``candidates`` samples per region (best of N), ``style_ref`` (the old word as the reference, DESIGN §13:
    true only for a model that has the input), ``upscale`` (detail of regions larger than the window)."""

    steps: int
    guidance: float
    sampler: str
    restarts: int
    restart_strength: float
    blend: str
    mask_rule: str
    candidates: int
    style_ref: bool
    upscale: str = "bilinear"

    @classmethod
    def resolve(cls, cfg, *, steps=None, guidance=None, sampler=None, restarts=None, blend=None, mask_rule=None,
                candidates=None, style_ref=None, upscale=None) -> "SampleOptions":
        """Each option None → the model's default (``cfg.sample``); then every value checked."""
        s = cfg.sample
        pick = lambda given, default: default if given is None else given  # noqa: E731
        if style_ref is not None and not isinstance(style_ref, bool):
            raise ConfigError(f"style_ref must be true or false, got {style_ref!r}")
        check_options(pick(steps, s.steps), pick(guidance, s.guidance), pick(sampler, s.sampler),
                      pick(restarts, s.restarts), pick(blend, s.blend), pick(mask_rule, s.mask_rule),
                      pick(candidates, s.candidates))
        if pick(upscale, s.upscale) not in UPSCALE_MODES:
            raise ConfigError(f"unknown sample.upscale {pick(upscale, s.upscale)!r}; choose one of "
                              f"{', '.join(UPSCALE_MODES)}")
        return cls(steps=int(pick(steps, s.steps)), guidance=float(pick(guidance, s.guidance)),
                   sampler=pick(sampler, s.sampler), restarts=int(pick(restarts, s.restarts)),
                   restart_strength=float(s.restart_strength), blend=pick(blend, s.blend),
                   mask_rule=pick(mask_rule, s.mask_rule), candidates=int(pick(candidates, s.candidates)),
                   style_ref=bool(pick(style_ref, s.use_style_ref)) and bool(cfg.style_ref),
                   upscale=pick(upscale, s.upscale))

    def to_dict(self) -> dict:
        return asdict(self)


def check_options(steps, guidance, sampler, restarts=0, blend="feather", mask_rule="attention", candidates=1) -> None:
    """Raise :class:`ConfigError` for sampling options no entry point accepts."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if not _whole(steps):
        raise ConfigError(f"steps must be a whole number, got {steps!r}")
    if isinstance(guidance, bool) or not isinstance(guidance, numbers.Real):
        raise ConfigError(f"guidance must be a number, got {guidance!r}")
    if not 1 <= steps <= MAX_STEPS:
        raise ConfigError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    if not math.isfinite(float(guidance)) or not 0 <= float(guidance) <= MAX_GUIDANCE:
        raise ConfigError(f"guidance must be a number from 0 to {MAX_GUIDANCE:g}, got {guidance}")
    if not _whole(restarts) or not 0 <= restarts <= MAX_RESTARTS:
        raise ConfigError(f"restarts must be a whole number from 0 to {MAX_RESTARTS}, got {restarts!r}")
    if blend not in BLEND_MODES:
        raise ConfigError(f"unknown blend {blend!r}; choose one of {', '.join(BLEND_MODES)}")
    if mask_rule not in MASK_RULES:
        raise ConfigError(f"unknown sample.mask_rule {mask_rule!r}; choose one of {', '.join(MASK_RULES)}")
    if not _whole(candidates) or not 1 <= candidates <= MAX_CANDIDATES:
        raise ConfigError(f"candidates must be a whole number from 1 to {MAX_CANDIDATES}, got {candidates!r}")


def check_seed(seed) -> int:
    """A seed as given by a user (CLI, --spec, API, web page) → int, or ConfigError: a whole number 0 … 2^63 − 1."""
    if not _whole(seed):
        raise ConfigError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ConfigError(f"seed must be from 0 to {MAX_SEED} (2^63 − 1), got {seed}")
    return int(seed)
