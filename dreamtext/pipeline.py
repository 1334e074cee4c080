"""``dreamtext.pipeline``: the editing pipeline's old import path, kept for users' code (issue 23).

The pipeline lives in :mod:`dreamtext.edit.pipeline`; this module re-exports its public names.
"""

from .edit.pipeline import DreamTextPipeline, candidate_seed, noise_generators  # noqa: F401

__all__ = ["DreamTextPipeline", "candidate_seed", "noise_generators"]
