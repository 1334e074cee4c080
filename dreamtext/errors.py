"""User-facing errors.

Everything a user can get wrong (text, regions, images, checkpoints, dataset
files) raises a subclass of :class:`DreamTextError` whose message names the
problem in one line. The CLI prints that line and exits non-zero; anything
else that escapes is a bug in dreamtext.
"""


class DreamTextError(Exception):
    """Base class of every error caused by user input."""


class TextError(DreamTextError, ValueError):
    """Target text that the model cannot write (unknown characters, empty, too long)."""


class RegionError(DreamTextError, ValueError):
    """A box or quad that is malformed, of zero area or outside the image."""


class ImageError(DreamTextError, ValueError):
    """An image file that cannot be read or has an unusable format."""


class CheckpointError(DreamTextError, ValueError):
    """A checkpoint that is missing, corrupt, or does not match this code."""


class DatasetError(DreamTextError, ValueError):
    """A dataset file with missing fields or inconsistent records."""


class ConfigError(DreamTextError, ValueError):
    """An unknown config key or a value of the wrong type."""
