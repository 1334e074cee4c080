"""Writes that never leave a half-written file behind, and safe image reading.

Every file a user or a resumed run depends on is written to a temporary name in
the same directory and renamed into place (``os.replace`` is atomic on POSIX),
so a crash or SIGKILL leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import ImageError

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


def read_image_rgb(path_or_image, *, max_pixels: int | None = None) -> np.ndarray:
    """Any image a user may hand us → uint8 RGB (H, W, 3).

    Applies EXIF orientation, drops alpha (composited on white), expands
    grayscale and palette images and scales 16-bit images to 8 bits. Unreadable
    files raise :class:`ImageError` naming the file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = str(path_or_image) if isinstance(path_or_image, (str, os.PathLike)) else "<image>"
    if isinstance(path_or_image, np.ndarray):
        arr = path_or_image
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
        else:
            if not Path(path_or_image).is_file():
                raise ImageError(f"image file {name!r} does not exist")
            img = Image.open(path_or_image)
            img.load()
        img = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot read image {name!r}: {e}") from None
    if max_pixels is not None and img.width * img.height > max_pixels:
        raise ImageError(f"image {name!r} is {img.width}×{img.height}; the limit is {max_pixels} pixels")
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
