"""Writes that never leave a half-written file behind, and safe image reading.

Every file a user or a resumed run depends on is written to a temporary name in
the same directory and renamed into place (``os.replace`` is atomic on POSIX),
so a crash or SIGKILL leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import CheckpointError, ImageError

# mkstemp/mkdtemp create private (0600/0700) entries; outputs get the usual umask-based modes instead.
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_image(path: str | os.PathLike, image, **save_kwargs) -> None:
    """Save a PIL image or uint8 array; the format follows the file extension."""
    import io

    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    path = Path(path)
    buf = io.BytesIO()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"cannot tell the image format of {str(path)!r} from its extension")
    image.save(buf, format=fmt, **save_kwargs)
    atomic_write_bytes(path, buf.getvalue())


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, merge: bool = False):
    """Yield a temporary directory beside ``path``; on success it replaces ``path`` whole.

    ``merge=True`` instead moves each written file into ``path`` (one atomic rename per file) and leaves
    every other file already there alone: the way to write into a folder that holds a user's files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)
        yield tmp
        for f in tmp.rglob("*"):  # writers that go through their own temp file (safetensors) leave 0600
            if f.is_file() and not f.is_symlink():
                os.chmod(f, 0o666 & ~_UMASK)
        if merge and path.is_dir():
            for f in sorted(tmp.iterdir()):
                os.replace(f, path / f.name)
            os.rmdir(tmp)
        elif path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# The largest image any entry point decodes (CLI, Python API, dataset readers, web page): 50 megapixels, more
# than a 48-MP phone photo. Checked on the file's header before a pixel is decoded, so a decompression bomb
# (a 45-byte PNG claiming 20000×20000) costs nothing. DREAMTEXT_MAX_IMAGE_PIXELS sets another limit.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
MAX_IMAGE_PIXELS_ENV = "DREAMTEXT_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int:
    """The pixel limit in force: ``$DREAMTEXT_MAX_IMAGE_PIXELS`` (a whole number ≥ 1) or 50 million."""
    raw = os.environ.get(MAX_IMAGE_PIXELS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ImageError(f"{MAX_IMAGE_PIXELS_ENV}={raw!r} must be a whole number of pixels ≥ 1")
    return value


def _check_pixels(width: int, height: int, name: str, limit: int) -> None:
    if width * height > limit:
        raise ImageError(f"image {name!r} is {width}×{height} = {width * height / 1e6:.1f} megapixels; the limit is "
                         f"{limit / 1e6:g} megapixels (scale it down, or raise {MAX_IMAGE_PIXELS_ENV})")


def open_image_checked(path: str | os.PathLike, name: str | None = None, max_pixels: int | None = None):
    """``PIL.Image.open`` of a file with its header's size checked against the pixel limit before decoding.

    Returns the lazily opened image; ``name`` is what error messages call the file (default: its path).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    name = str(path) if name is None else name
    limit = max_image_pixels() if max_pixels is None else max_pixels
    if not Path(path).is_file():
        raise ImageError(f"image file {name!r} does not exist")
    try:
        with warnings.catch_warnings():  # Pillow warns past its own limit; ours is the one that applies
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except Image.DecompressionBombError as e:  # past twice Pillow's limit: refused at the header already
        raise ImageError(f"image {name!r} is too large to decode ({e}); the limit is {limit / 1e6:g} megapixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot read image {name!r}: {e}") from None
    _check_pixels(img.width, img.height, name, limit)
    return img


def read_image_rgb(path_or_image, *, max_pixels: int | None = None, name: str | None = None) -> np.ndarray:
    """Any image a user may hand us → uint8 RGB (H, W, 3).

    Applies EXIF orientation, drops alpha (composited on white), expands
    grayscale and palette images and scales 16-bit images to 8 bits. Unreadable
    files raise :class:`ImageError` naming the file (``name``, default its path); so does an image of more
    than ``max_pixels`` (default :func:`max_image_pixels`), checked before decoding.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if name is None:
        name = str(path_or_image) if isinstance(path_or_image, (str, os.PathLike)) else "<image>"
    limit = max_image_pixels() if max_pixels is None else max_pixels
    if isinstance(path_or_image, np.ndarray):
        arr = path_or_image
        if arr.ndim >= 2:
            _check_pixels(arr.shape[1], arr.shape[0], name, limit)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
            raise ImageError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
        if arr.dtype == np.uint16:
            arr = (arr // 257).astype(np.uint8)
        elif arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.max() <= 1.0:
                arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
            else:
                arr = np.clip(arr, 0, 255).astype(np.uint8)
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        if arr.shape[2] == 4:
            alpha = arr[..., 3:4].astype(np.float32) / 255.0
            arr = (arr[..., :3] * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
        return np.ascontiguousarray(arr)
    try:
        if isinstance(path_or_image, Image.Image):
            img = path_or_image
            _check_pixels(img.width, img.height, name, limit)
        else:
            img = open_image_checked(path_or_image, name, limit)
            img.load()
        img = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"cannot read image {name!r}: {e}") from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([arr] * 3, axis=-1))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def read_tensors(path: str | os.PathLike) -> dict:
    """A safetensors file → dict; a missing or corrupt file raises CheckpointError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint file {str(path)!r} is corrupt or not safetensors: {e}") from None


def read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint file {str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint file {str(path)!r} must hold a JSON object")
    return data
