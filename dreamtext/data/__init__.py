"""The data engine (DESIGN §6): one record type, a synthetic scene-text generator,
readers for the real datasets, tar shards, and the model-ready transform.

Submodules are imported where used so ``import dreamtext.data`` stays light.
"""

from .record import TextRecord

__all__ = ["TextRecord"]
