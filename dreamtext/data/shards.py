"""Tar shards in the webdataset layout: ``shard-000000.tar`` holding, per record ``<key>``:

  ``<key>.jpg``        the scene (RGB; ``.png`` when written losslessly)
  ``<key>.json``       {"text", "word_quad", "char_quads" | null, "source", "key", "height", "width"}
  ``<key>.masks.png``  character masks as a label map (0 = none, i + 1 = character i), when present

``<key>`` has no dots (webdataset splits the extension at the first dot); the
record's own key is kept in the JSON. Each shard is written to a temporary name
and renamed when complete, so a directory never holds a half-written shard, and
``write_synth_shards`` resumes by skipping shards that exist.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError
from ..io_utils import atomic_write_bytes, atomic_write_text
from .indexed import IndexedSource
from .record import TextRecord

SHARD_PATTERN = "shard-{:06d}.tar"
META_NAME = "meta.json"
FORMAT_VERSION = 1


def _encode_image(image: np.ndarray, ext: str) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode("." + ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise DatasetError(f"could not encode a {image.shape} image as {ext}")
    return buf.tobytes()


def _label_map(masks: np.ndarray) -> np.ndarray:
    """(n, H, W) bool → uint8 (H, W) label map; raises if masks overlap (a label map could not hold them)."""
    if len(masks) > 255:
        raise DatasetError(f"{len(masks)} character masks do not fit a uint8 label map")
    if (masks.sum(0) > 1).any():
        raise DatasetError("character masks overlap; they cannot be stored as a label map")
    labels = np.zeros(masks.shape[1:], np.uint8)
    for i, m in enumerate(masks):
        labels[m] = i + 1
    return labels


def _safe_key(key: str, index: int) -> str:
    return f"{index:09d}_" + re.sub(r"[^A-Za-z0-9_-]+", "-", key)[:80]


def shard_bytes(records: list[TextRecord], start_index: int = 0, image_format: str = "jpg") -> bytes:
    """A tar archive (bytes) holding ``records`` in the layout above."""
    if image_format not in ("jpg", "png"):
        raise DatasetError(f"image format must be 'jpg' or 'png', got {image_format!r}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for j, rec in enumerate(records):
            key = _safe_key(rec.key or str(start_index + j), start_index + j)
            meta = {
                "text": rec.text, "source": rec.source, "key": rec.key,
                "height": rec.height, "width": rec.width,
                "word_quad": np.asarray(rec.word_quad).round(3).tolist(),
                "char_quads": None if rec.char_quads is None else np.asarray(rec.char_quads).round(3).tolist(),
            }
            files = {f"{key}.{image_format}": _encode_image(rec.image, image_format),
                     f"{key}.json": json.dumps(meta).encode()}
            if rec.char_masks is not None:
                ok, png = cv2.imencode(".png", _label_map(rec.char_masks))
                files[f"{key}.masks.png"] = png.tobytes()
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 0  # identical bytes for identical records
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_shard(path: str | os.PathLike, records: list[TextRecord], start_index: int = 0,
                image_format: str = "jpg") -> None:
    """Write one shard atomically (temporary file + rename)."""
    atomic_write_bytes(path, shard_bytes(records, start_index, image_format))


def _render_shard(job) -> tuple[int, int]:
    out, cfg_dict, seed, shard, start, stop, image_format = job
    from ..config import DreamTextConfig
    from .render import SynthGenerator, SynthParams
    from .transforms import opencv_in_forked_worker

    opencv_in_forked_worker()
    cfg = DreamTextConfig.from_dict(cfg_dict)
    gen = SynthGenerator(SynthParams.from_config(cfg), seed)
    records = [gen.sample(i) for i in range(start, stop)]
    write_shard(Path(out) / SHARD_PATTERN.format(shard), records, start, image_format)
    return shard, stop - start


def write_synth_shards(out: str | os.PathLike, cfg, num: int, shard_size: int = 1000, workers: int = 1,
                       seed: int = 0, progress: bool = True, image_format: str = "jpg") -> dict:
    """Render ``num`` generator records (indices 0..num-1 of ``seed``) into shards under ``out``.

    Resumable: shards already present are kept (they were renamed into place only
    when complete), stray temporary files of an interrupted run are removed, and a
    ``meta.json`` guards against resuming with different settings.
    """
    if num < 1 or shard_size < 1 or workers < 1:
        raise DatasetError(f"--num, --shard-size and --workers must be positive (got {num}, {shard_size}, {workers})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"version": FORMAT_VERSION, "generator": "synth", "seed": seed, "num": num, "shard_size": shard_size,
            "max_len": cfg.max_len, "words": cfg.data.words, "font_px": list(cfg.data.synth_font_px),
            "image_format": image_format,
            # only when set, so shard folders written before the option existed still resume
            **({"glyph_balance": float(cfg.data.glyph_balance)} if cfg.data.glyph_balance else {})}
    meta_path = out / META_NAME
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DatasetError(f"cannot read {meta_path}: {e}") from None
        if old != meta:
            diff = {k: (old.get(k), v) for k, v in meta.items() if old.get(k) != v}
            raise DatasetError(f"{out} holds shards written with other settings {diff} (old, new); "
                               "use another --out or delete it")
    else:
        atomic_write_text(meta_path, json.dumps(meta, indent=2))
    for stray in out.glob(".shard-*.tmp"):
        stray.unlink()
    n_shards = (num + shard_size - 1) // shard_size
    todo = [s for s in range(n_shards) if not (out / SHARD_PATTERN.format(s)).exists()]
    cfg_dict = cfg.to_dict()
    jobs = [(str(out), cfg_dict, seed, s, s * shard_size, min(num, (s + 1) * shard_size), image_format) for s in todo]
    from tqdm import tqdm

    bar = tqdm(total=sum(j[5] - j[4] for j in jobs), unit="rec", desc="synth shards", disable=not progress)
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            bar.update(_render_shard(job)[1])
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for _, n in pool.imap_unordered(_render_shard, jobs):
                bar.update(n)
    bar.close()
    return {"num": num, "shards": n_shards, "written": len(todo), "skipped": n_shards - len(todo)}


class ShardReader(IndexedSource):
    """Records from a directory of shards (or one ``.tar``), in shard order."""

    name = "shards"

    def __init__(self, path: str | os.PathLike, strict: bool = False):
        super().__init__(strict)
        p = Path(path)
        if p.is_file():
            tars = [p]
        elif p.is_dir():
            tars = sorted(f for f in p.glob("*.tar") if not f.name.startswith("."))
        else:
            raise DatasetError(f"shard path {str(p)!r} does not exist")
        if not tars:
            raise DatasetError(f"no .tar shards in {str(p)!r}")
        self.tars = tars
        self._open: tuple[Path, tarfile.TarFile] | None = None
        for t in tars:
            try:
                with tarfile.open(t) as tar:
                    members = tar.getmembers()
            except (tarfile.TarError, OSError) as e:
                raise DatasetError(f"cannot read shard {str(t)!r}: {e}") from None
            groups: dict[str, dict[str, tarfile.TarInfo]] = {}
            for m in members:
                if not m.isfile():
                    continue
                key, _, ext = m.name.partition(".")
                groups.setdefault(key, {})[ext] = m
            self.entries.extend((t, key, exts) for key, exts in groups.items())

    def _tar(self, path: Path) -> tarfile.TarFile:
        if self._open is None or self._open[0] != path:
            if self._open is not None:
                self._open[1].close()
            self._open = (path, tarfile.open(path))
        return self._open[1]

    def load(self, i: int) -> TextRecord | None:
        path, key, exts = self.entries[i]
        where = f"shard {str(path)!r} record {key!r}"
        img_ext = next((e for e in ("jpg", "png", "jpeg") if e in exts), None)
        if img_ext is None or "json" not in exts:
            self.skipped.skip("record without an image or a .json", where)
            return None
        tar = self._tar(path)
        try:
            meta = json.loads(tar.extractfile(exts["json"]).read())
            raw = np.frombuffer(tar.extractfile(exts[img_ext]).read(), np.uint8)
        except (tarfile.TarError, OSError, json.JSONDecodeError) as e:
            raise DatasetError(f"{where}: {e}") from None
        bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
        if bgr is None:
            self.skipped.skip("unreadable image", where)
            return None
        missing = [k for k in ("text", "word_quad") if k not in meta]
        if missing:
            raise DatasetError(f"{where}: json lacks {missing}")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        masks = None
        if "masks.png" in exts:
            labels = cv2.imdecode(np.frombuffer(tar.extractfile(exts["masks.png"]).read(), np.uint8),
                                  cv2.IMREAD_UNCHANGED)
            if labels is None or labels.shape != image.shape[:2]:
                raise DatasetError(f"{where}: character mask map does not match the image")
            masks = labels[None] == np.arange(1, len(meta["text"]) + 1, dtype=np.uint8)[:, None, None]
        cq = meta.get("char_quads")
        return TextRecord(image=image, text=meta["text"], word_quad=np.array(meta["word_quad"], np.float32),
                          char_quads=None if cq is None else np.array(cq, np.float32), char_masks=masks,
                          source=meta.get("source", "shards"), key=meta.get("key") or key)
