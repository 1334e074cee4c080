"""dreamtext: DreamText scene text synthesis and editing with a diffusion model.

Heavy modules (torch, diffusers) are imported lazily: ``from dreamtext import
DreamTextPipeline`` pulls them in, ``import dreamtext`` does not.
"""

from .config import DreamTextConfig, load_config
from .errors import DreamTextError

__version__ = "0.1.0"
__all__ = ["DreamTextConfig", "DreamTextError", "DreamTextPipeline", "load_config"]


def __getattr__(name):
    if name == "DreamTextPipeline":
        from .edit.pipeline import DreamTextPipeline

        return DreamTextPipeline
    raise AttributeError(name)
