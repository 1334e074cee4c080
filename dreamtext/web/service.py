"""The web page's request handling without Gradio (dreamtext.web.app builds the page around it): the server's
deployment settings (``ServeSettings``) and ``EditService``, which checks one request's input, runs the edit under
a lock and builds what the page shows (``EditOutput``) — plain Python, tested without a browser.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..config import BLEND_MODES, MASK_RULES
from ..errors import DreamTextError, ImageError
from .inputs import parse_regions


@dataclass
class ServeSettings:
    """Limits and address of the web server (deployment settings, not model settings,
    so they live here and not in the checkpoint's ``DreamTextConfig``)."""

    host: str = "127.0.0.1"  # loopback only unless the user asks otherwise
    port: int = 7860
    max_upload_mb: float = 10.0  # largest accepted upload, in MiB (also Gradio's upload limit)
    max_side: int = 4096  # longest accepted image side in pixels, checked before decoding
    max_regions: int = 8  # boxes per request
    max_steps: int = 200  # upper end of the steps slider (and of accepted values)
    max_queue: int = 16  # waiting requests beyond this are refused with a message
    keep_results_s: float = 3600.0  # downloadable results older than this are deleted
    # Browser sessions whose photo is kept in memory (up to max_side² × 3 bytes each); the
    # oldest are forgotten beyond this, and their next Edit asks for the photo again.
    max_sessions: int = 32

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


# ----------------------------------------------------------------------------- the edit


@dataclass
class EditOutput:
    """What the page shows after one request; ``message`` is set instead on bad input."""

    message: str
    image: np.ndarray | None = None  # uint8 (H, W, 3): the edited photo
    before: np.ndarray | None = None  # uint8 (H, W, 3): the uploaded photo
    overlay: np.ndarray | None = None  # uint8 (H, W, 3): the result with per-character masks painted
    download: str | None = None  # path of the result PNG inside the server's temp folder
    ok: bool = False


EditFn = Callable[..., Any]  # edit(image, regions, texts, *, steps, guidance, sampler, seed[, restarts, blend,
#                              mask_rule, candidates]) -> EditResult
MAX_RESTARTS = 4  # upper end of the restarts slider: more did not help the shipped model (BENCHMARKS)
MAX_WEB_CANDIDATES = 8  # upper end of the candidates slider: each one is a whole sampling run more


class EditService:
    """Runs one edit request: checks the input, calls the pipeline, builds the pictures.

    ``edit_fn`` follows ``DreamTextPipeline.edit``'s contract (docs/ARCHITECTURE.md)
    and is injectable so the server can be exercised with any model. A lock
    serialises calls even if a caller bypasses Gradio's queue.
    """

    def __init__(self, edit_fn: EditFn, *, max_len: int, settings: ServeSettings, results_dir: str | os.PathLike,
                 defaults: dict[str, Any] | None = None):
        self.edit_fn = edit_fn
        self.max_len = max_len
        self.settings = settings
        self.results_dir = Path(results_dir)
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.defaults = {"steps": 50, "guidance": 3.0, "sampler": "ddim", "seed": 0, **(defaults or {})}
        self._lock = threading.Lock()

    def run(self, image: np.ndarray | None, regions_spec: str, *, steps: float, guidance: float,
            sampler: str, seed: float, restarts: float | None = None, blend: str | None = None,
            mask_rule: str | None = None, candidates: float | None = None,
            style_ref: bool | None = None) -> EditOutput:
        """``restarts`` / ``blend`` / ``mask_rule`` / ``candidates`` None: the model's default (``edit_fn`` is
        not passed any); ``style_ref`` False: the region masked only, without the old word as the style
        reference (True and None: the model's default, the reference where the model has it)."""
        try:
            if image is None:
                raise ImageError("no photo uploaded yet: upload a PNG or JPEG first")
            quads, texts = parse_regions(regions_spec, (image.shape[1], image.shape[0]), self.max_len,
                                         self.settings.max_regions)
            from ..sample_options import check_options, check_seed

            if not all(math.isfinite(float(v)) for v in (steps, seed, guidance)):
                raise DreamTextError(f"steps, guidance and seed must be numbers, got {steps}, {guidance}, {seed}")
            steps, seed = int(steps), check_seed(int(seed))  # the CLI's and the API's seed range
            # The page's own, stricter caps first; then the limits every entry point shares.
            if not 1 <= steps <= self.settings.max_steps:
                raise DreamTextError(f"steps must be between 1 and {self.settings.max_steps}, got {steps}")
            options = {}
            if restarts is not None:
                if not 0 <= int(restarts) <= MAX_RESTARTS:
                    raise DreamTextError(f"restarts must be between 0 and {MAX_RESTARTS}, got {int(restarts)}")
                options["restarts"] = int(restarts)
            if candidates is not None:
                if not 1 <= int(candidates) <= MAX_WEB_CANDIDATES:
                    raise DreamTextError(f"candidates must be between 1 and {MAX_WEB_CANDIDATES}, got {int(candidates)}")
                options["candidates"] = int(candidates)
            for name, value, choices in (("blend", blend, BLEND_MODES), ("mask_rule", mask_rule, MASK_RULES)):
                if value is not None:
                    if value not in choices:
                        raise DreamTextError(f"unknown {name.replace('_', ' ')} {value!r}; choose one of "
                                             f"{', '.join(choices)}")
                    options[name] = value
            check_options(steps, float(guidance), sampler, options.get("restarts", 0), options.get("blend", "feather"),
                          options.get("mask_rule", "attention"), options.get("candidates", 1))
            if style_ref is False:
                options["style_ref"] = False
            with self._lock:
                result = self.edit_fn(image, quads, texts, steps=steps, guidance=float(guidance),
                                      sampler=sampler, seed=seed, **options)
        except DreamTextError as e:
            return EditOutput(message=f"Error: {e}")
        except Exception as e:  # a bug, not the user's fault: log it, tell the user, keep serving
            traceback.print_exc(file=sys.stderr)
            return EditOutput(message=f"Internal error ({type(e).__name__}: {e}); the server log has details")
        edited = np.asarray(result.image.convert("RGB"), np.uint8)
        overlay = edited
        from ..visualize import mask_legend, mask_overlay

        for region in result.regions:
            masks = np.asarray(region.char_masks, bool)
            if masks.ndim == 3 and masks.shape[1:] == edited.shape[:2] and masks.any():
                overlay = mask_overlay(overlay, masks, dim=0.0)  # dim=0: pixels outside the masks unchanged
        overlay = np.concatenate([overlay, mask_legend(texts, overlay.shape[1])], axis=0)
        download = self._save_result(edited)
        n = len(texts)
        restarts_note = f" + {options['restarts']} restarts" if options.get("restarts") else ""
        extras = "".join(f", {v} {k.replace('_', ' ')}" for k, v in options.items()
                         if k in ("blend", "mask_rule") and v not in ("feather", "attention"))
        readings = [getattr(r, "verifier_reading", None) for r in result.regions]
        if any(r is not None for r in readings):  # best of N: say what the verifier read in what was kept
            extras += f", best of {options.get('candidates', '?')}; the verifier reads " + \
                      ", ".join(repr(r) for r in readings)
        return EditOutput(message=f"Done: {n} box{'es' if n > 1 else ''} edited "
                                  f"({steps} steps{restarts_note}, guidance {float(guidance):g}, {sampler}, "
                                  f"seed {seed}{extras}).",
                          image=edited, before=image, overlay=overlay, download=download, ok=True)

    def _save_result(self, edited: np.ndarray) -> str:
        from ..io_utils import atomic_save_image

        now = time.time()
        for old in self.results_dir.glob("*.png"):  # bounded disk use on a long-running server
            with contextlib.suppress(OSError):
                if now - old.stat().st_mtime > self.settings.keep_results_s:
                    old.unlink()
        folder = self.results_dir / uuid.uuid4().hex[:12]
        path = folder / "dreamtext_edit.png"
        atomic_save_image(path, edited)
        return str(path)
