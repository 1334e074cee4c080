"""DreamTextPipeline: edit or reconstruct text in any photograph (DESIGN §7).

For each region (a box or a 4-point quad in image pixels) the pipeline

1. maps a context window around it to the model's resolution with the same
   transform training uses (:func:`dreamtext.data.transforms.context_window`:
   aspect kept with replicated borders, crop around small words), after
   rotating tilted text upright, so the model sees what it was trained on;
2. builds the inpainting condition (region mask, masked crop, token ids, the
   glyph prior when the model has one) — all regions of an image in one batch;
3. samples with classifier-free guidance (:mod:`dreamtext.sampling`);
4. warps the generated crop back with the inverse transform and blends it in
   with a feathered mask: 1 inside the region, falling to 0 over a band of
   ``feather × region height`` pixels (``sample.blend = "poisson"`` first
   re-colours it to meet the photo at the band's edge, ``"inpaint"`` keeps only
   its letters, over the photo's own background, ``"recolor"`` shifts it to the
   old letters' and the photo's colours; :mod:`dreamtext.paste`).
   Pixels beyond every band are copied from the input, so they are byte-identical.

The per-character masks predicted from the cross-attention (§3; narrowed to the
generated strokes with ``sample.mask_rule = "strokes"``) come back in image
coordinates beside the edited image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config_ranges import MAX_REGIONS, MAX_SAMPLE_BATCH
from ..data.geometry import apply_matrix, bbox, enlargement, fill_quad
from ..errors import CheckpointError, RegionError
from ..pixels import to_uint8
from ..sample_options import SampleOptions, check_seed
from .candidates import (StepBar, candidate_seed, noise_generators, pick_candidates,  # noqa: F401 (candidate_seed: API)
                         paste_auto, window_generators)
from .paste import masks_to_image, paste_back, quad_height, region_support
from .layout import check_phrase, chunk_cells, layout, sub_quad
from .results import EditResult, RegionResult
from .regions import check_legible, parse_region, window_matrix



# ----------------------------------------------------------------------------- the pipeline


class DreamTextPipeline:
    """A trained DreamText model plus everything needed to edit text in photographs."""

    def __init__(self, model, cfg=None, device: str = "cpu"):
        import torch

        self.model = model.to(device).eval()
        self.cfg = cfg if cfg is not None else model.cfg
        self.device = torch.device(device)
        self._verifier = None  # loaded on first use (sample.candidates > 1)
        self._refiner = None  # loaded on first use (sample.upscale = "refiner")
        self._schedulers: dict = {}  # sampler name → its scheduler, made on first use (self.scheduler)

    @property
    def verifier(self):
        """The word verifier that picks among candidates (``sample.verifier``; None: the shipped one), loaded once."""
        if self._verifier is None:
            from ..model.verifier import load_verifier

            model, vcfg = load_verifier(self.cfg.sample.verifier)
            if tuple(vcfg.image_size) != tuple(self.cfg.image_size):
                raise CheckpointError(f"the word verifier reads {tuple(vcfg.image_size)} crops but this model writes "
                                      f"{tuple(self.cfg.image_size)}: train one for this model with "
                                      "`dreamtext train-verifier` and set sample.verifier")
            self._verifier = model.to(self.device)
        return self._verifier

    # ---- loading and saving
    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, *, device: str = "cpu",
                        use_ema: bool = True) -> "DreamTextPipeline":
        """``None``: the model shipped in ``dreamtext/assets/model``; else a run, checkpoint or pipeline directory."""
        from ..model.checkpoint import load_model, model_path

        model, cfg = load_model(model_path(path), use_ema=use_ema)
        return cls(model, cfg, device=device)

    def save_pretrained(self, directory: str | Path, *, half: bool = False, source: dict | None = None,
                        force: bool = False) -> Path:
        """Write ``model.safetensors`` + ``config.json`` (atomically); the directory reloads alone.

        ``directory`` must be new, empty or an earlier pipeline export; ``force`` writes the three files
        into a folder holding other files (left alone). A training checkpoint is never a target
        (``checkpoint.export_mode``).

        ``half``: store floating-point weights as float16 (half the size; loading casts them back
        to the model's float32), as the model shipped inside the package is stored. ``source``: where
        the weights came from (e.g. the training checkpoint and its step), kept in ``state.json``.
        """
        import torch

        from ..model.checkpoint import export_mode, save_checkpoint

        merge = export_mode(directory, kind="pipeline", force=force)

        def stored(v: torch.Tensor) -> torch.Tensor:
            v = v.detach().cpu()
            return (v.half() if half and v.is_floating_point() else v).contiguous()

        state = {k: stored(v) for k, v in self.model.state_dict().items()}
        meta = {"kind": "pipeline", **({"source": source} if source else {})}
        save_checkpoint(directory, self.cfg, {"model": state}, meta, merge=merge)
        return Path(directory)

    # ---- editing
    def edit(self, image, regions, texts, *, steps: int | None = None, guidance: float | None = None,
             sampler: str | None = None, restarts: int | None = None, blend: str | None = None,
             mask_rule: str | None = None, candidates: int | None = None, seed: int | None = 0,
             style_ref: bool | None = None, upscale: str | None = None, progress: bool = False) -> EditResult:
        """Write ``texts[i]`` into ``regions[i]`` of ``image``; all regions sampled in one batch.

        ``image``: a path, PIL image or array (EXIF rotation, alpha, grayscale and
        16-bit handled). ``regions``: boxes (x0, y0, x1, y1) or quads (4 points
        TL, TR, BR, BL) in image pixels. ``steps`` / ``guidance`` / ``sampler`` /
        ``restarts`` (restart-sampling passes) / ``blend`` (paste-back, "feather", "poisson", "inpaint",
        "recolor" or "auto": recolor where the word verifier reads it as well, docs/editing.md) /
        ``mask_rule`` (the returned character masks, "attention" or "strokes") / ``candidates`` (samples per
        region, the word verifier keeps the best) / ``style_ref`` (a model with the style reference sees the
        region's original pixels, the old word, as the reference; False: the region masked only) / ``upscale``
        (a region larger than the model's window: "bilinear", "unsharp", "matte", "transfer" or "refiner",
        docs/editing.md) default to
        ``cfg.sample``; ``seed`` makes the result bit-identical on the same machine (None: a random seed).
        """
        return self.edit_many([(image, regions, texts)], steps=steps, guidance=guidance, sampler=sampler,
                              restarts=restarts, blend=blend, mask_rule=mask_rule, candidates=candidates,
                              seeds=[seed], style_ref=style_ref, upscale=upscale, progress=progress)[0]

    def edit_many(self, jobs, *, steps: int | None = None, guidance: float | None = None,
                  sampler: str | None = None, restarts: int | None = None, blend: str | None = None,
                  mask_rule: str | None = None, candidates: int | None = None, seeds=None,
                  style_ref: bool | None = None, upscale: str | None = None,
                  progress: bool = False) -> list[EditResult]:
        """Several photographs in one sampling batch: ``jobs`` = [(image, regions, texts), ...].

        Job i is seeded by ``seeds[i]`` (default 0 for every job; None: random) with its own
        generator, so its noise is the noise ``edit(*jobs[i], seed=seeds[i])`` draws (for a
        job of one region exactly; of several, the same whenever a region's latent has a
        multiple of 16 values, as every preset's has). Its pixels can still differ from that
        call's in the last bits where the batched UNet rounds differently. Options as in :meth:`edit`.

        With ``candidates`` = K > 1 the batch holds K copies of every region; candidate 0 draws from the
        job's generator exactly as K = 1 does (so it is the one-sample result), candidate c from a
        generator seeded by (seed, c). The verifier scores each crop against its text and the best is pasted.
        """
        import torch

        from ..diffusion.sampling import SampleOutput, sample_with_attention
        from ..io_utils import read_image_rgb

        o = SampleOptions.resolve(self.cfg, steps=steps, guidance=guidance, sampler=sampler, restarts=restarts,
                                  blend=blend, mask_rule=mask_rule, candidates=candidates, style_ref=style_ref,
                                  upscale=upscale)
        jobs = list(jobs)
        seeds = [0] * len(jobs) if seeds is None else list(seeds)
        if not jobs or len(seeds) != len(jobs):
            raise RegionError(f"{len(jobs)} job(s) and {len(seeds)} seed(s): give at least one job and one seed each")
        seeds = [check_seed(s) if s is not None else int(torch.seed() % 2**63) for s in seeds]
        # 1. every photo read and checked, every region laid out in chunks, every chunk's window cut
        prepared = []
        for image, regions, job_texts in jobs:
            img = read_image_rgb(image)
            job_quads, job_texts = self._check_inputs(img, regions, job_texts)
            # A phrase or a long word becomes several chunks, each its own window (layout.py, DESIGN §14).
            chunks = [layout(text, self.cfg.max_len) for text in job_texts]
            item_quads = [sub_quad(q, *c.span) for q, cs in zip(job_quads, chunks) for c in cs]
            item_texts = [c.text for cs in chunks for c in cs]
            batch, matrices, crops = self.prepare(img, item_quads, item_texts, style_ref=o.style_ref)
            prepared.append(_Job(img, job_quads, job_texts, chunks, item_quads, batch, matrices, crops))
        detail = self._detail(o)  # the refiner loaded (or refused) before any pixel is sampled
        batch = {k: torch.cat([p.batch[k] for p in prepared]) for k in prepared[0].batch}
        n_items = len(batch["token_ids"])
        if o.candidates > 1:  # K tiled copies: item c·n + j is candidate c of region j
            batch = {k: v.repeat(o.candidates, *([1] * (v.dim() - 1))) for k, v in batch.items()}
        # 2. all regions of all jobs (and candidates) sampled in one batch — or, past MAX_SAMPLE_BATCH windows, in
        # groups of that many, each window with a generator of its own, so memory stays flat however many there are
        bar = StepBar() if progress else None
        quads_per_job = [p.item_quads for p in prepared]
        total = len(batch["token_ids"])
        groups = [(0, total)] if total <= MAX_SAMPLE_BATCH else [(a, min(a + MAX_SAMPLE_BATCH, total))
                                                                   for a in range(0, total, MAX_SAMPLE_BATCH)]
        generators = (noise_generators(seeds, quads_per_job, o.candidates) if len(groups) == 1
                      else window_generators(seeds, quads_per_job, o.candidates))
        parts = []
        for g, (a, b) in enumerate(groups):
            part = {k: v[a:b] for k, v in batch.items()}
            report = None if bar is None else (lambda step, n, g=g: bar(g * n + step, len(groups) * n))
            parts.append(sample_with_attention(
                self.model, self.model.make_cond(part), self.scheduler(o.sampler), o.steps, o.guidance,
                generators if len(groups) == 1 else generators[a:b], progress=report, restarts=o.restarts,
                restart_strength=o.restart_strength))
        if bar is not None:
            bar.close()
        out = parts[0] if len(parts) == 1 else SampleOutput(
            x0=torch.cat([p.x0 for p in parts]), attn=None if parts[0].attn is None else torch.cat([p.attn for p in parts]))
        crops = to_uint8(out.x0)
        crop_masks = out.char_masks().cpu().numpy() if out.attn is not None else None
        # 3. best of K: the verifier keeps one candidate per region
        picks = all_crops = None
        if o.candidates > 1:
            picks = pick_candidates(self.verifier, self.cfg.max_len, crops, batch["mask"][:, 0].cpu().numpy(),
                                          [c.text for p in prepared for cs in p.chunks for c in cs] * o.candidates,
                                          n_items)
            keep = [c * n_items + j for j, c in enumerate(picks.chosen)]
            all_crops = crops.reshape(o.candidates, n_items, *crops.shape[1:])  # (K, n, H, W, 3)
            crops = crops[keep]
            crop_masks = None if crop_masks is None else crop_masks[keep]
        # 4. each photo's crops pasted back, given their detail back where the window was enlarged
        results, first = [], 0
        for job in prepared:
            n = len(job.item_quads)
            pieces = [RegionResult(quad=q, text=c.text, crop=crops[first + j], input_crop=job.crops[j],
                                   matrix=job.matrices[j], char_masks=None,
                                   crop_char_masks=None if crop_masks is None else crop_masks[first + j, :len(c.text)])
                      for j, (q, c) in enumerate(zip(job.item_quads, [c for cs in job.chunks for c in cs]))]
            if picks is not None:
                for j, piece in enumerate(pieces, start=first):
                    piece.candidate_scores = tuple(float(v) for v in picks.scores[:, j])
                    piece.chosen = int(picks.chosen[j])
                    piece.verifier_reading = picks.readings[j]
                    piece.candidate_crops = all_crops[:, j]
            blend = o.blend if o.blend != "auto" or o.style_ref else "feather"  # auto reads the old word
            results.append(self._paste(job.image, job.quads, job.texts, job.chunks, pieces, blend, o.mask_rule,
                                       detail))
            first += n
        return results

    @property
    def refiner(self):
        """The detail refiner (``sample.refiner``; None: the shipped one), loaded once on first use."""
        if self._refiner is None:
            from ..model.refiner import load_refiner

            self._refiner = load_refiner(self.cfg.sample.refiner)[0].to(self.device)
        return self._refiner

    def _detail(self, o: SampleOptions):
        """The paste-back's ``detail`` step for options ``o`` (None: the bilinear enlargement as it is)."""
        if o.upscale == "bilinear":
            return None
        from functools import partial

        from .detail import restore_detail

        return partial(restore_detail, o.upscale, has_ref=o.style_ref,
                       refiner=self.refiner if o.upscale == "refiner" else None,
                       upscale_min=self.cfg.sample.upscale_min)

    def scheduler(self, name: str):
        """The pipeline's scheduler of sampler ``name``, made once and kept (a component, as in diffusers)."""
        from ..diffusion.noise import make_scheduler

        if name not in self._schedulers:
            self._schedulers[name] = make_scheduler(self.cfg, name)
        return self._schedulers[name]

    def _paste(self, img, quads, texts, chunks, pieces, blend, mask_rule, detail=None) -> EditResult:
        """One photograph's generated crops pasted back, its masks warped to image coordinates.

        ``pieces``: one RegionResult per chunk (crop, matrix, crop-frame masks), in region order; a region of
        one chunk becomes that RegionResult, a region of several one whose ``chunks`` are them, its masks the
        chunks' in text order (a space has an empty mask).
        """
        from PIL import Image

        cfg = self.cfg
        result = img
        region_results, k = [], 0
        for quad, text, cs in zip(quads, texts, chunks):
            feather_px = max(1.0, cfg.sample.feather * quad_height(quad))
            cells = chunk_cells(quad, cs, reach=feather_px + 2) if len(cs) > 1 else [None]
            char_masks = np.zeros((len(text), *img.shape[:2]), bool)
            for chunk, cell in zip(cs, cells):
                piece = pieces[k]
                k += 1
                if blend == "auto":
                    result, piece.blend, scores = paste_auto(self.verifier, cfg, result, piece, chunk.text,
                                                             feather_px, cell, detail)
                    piece.blend_scores = tuple(float(v) for v in scores)
                else:
                    result = paste_back(result, piece.crop, piece.matrix, piece.quad, feather_px, blend, clip=cell,
                                        detail=detail)
                    piece.blend = blend
                cm = piece.crop_char_masks
                if cm is None:
                    cm = np.zeros((len(chunk.text), *cfg.latent_size), bool)
                support = region_support(piece.quad, img.shape[:2], feather_px)
                if cell is not None:
                    support &= fill_quad(cell, img.shape[:2]) > 0
                piece.crop_char_masks, piece.char_masks = self._piece_masks(piece, cm, mask_rule, result, support,
                                                                            feather_px)
                piece.feather_px = feather_px
                char_masks[chunk.start:chunk.start + len(chunk.text)] = piece.char_masks
            if len(cs) == 1:
                region_results.append(pieces[k - 1])
            else:
                first = pieces[k - len(cs)]
                region_results.append(RegionResult(quad=quad, text=text, crop=first.crop, input_crop=first.input_crop,
                                                   matrix=first.matrix, char_masks=char_masks,
                                                   crop_char_masks=first.crop_char_masks, feather_px=feather_px,
                                                   chunks=pieces[k - len(cs):k]))
        return EditResult(image=Image.fromarray(result), regions=region_results, input=img)

    def _piece_masks(self, piece, cm: np.ndarray, mask_rule: str, pasted: np.ndarray, support: np.ndarray,
                     feather_px: float) -> tuple[np.ndarray, np.ndarray]:
        """One chunk's character masks: (at the crop's resolution, in the photo bool (n, H, W)).

        ``cm`` (n, h', w'): the §3 masks; "strokes" narrows them to the letters' pixels — in the crop, and for a
        region enlarged from its window again in the ``pasted`` photo at the region's own resolution, so
        their outlines are the photo's pixels, not the window's enlarged.
        """
        from ..model.char_masks import refine_to_strokes

        cfg, hw = self.cfg, pasted.shape[:2]
        blobs = cm
        if mask_rule == "strokes":
            region = fill_quad(apply_matrix(piece.matrix, piece.quad), tuple(cfg.image_size)) > 0
            cm = refine_to_strokes(cm, piece.crop, region)  # (n, H, W) at the crop's resolution
        if mask_rule != "strokes" or enlargement(piece.matrix) <= cfg.sample.upscale_min:
            return cm, masks_to_image(cm, piece.matrix, tuple(cfg.image_size), hw, support)
        coarse = masks_to_image(blobs, piece.matrix, tuple(cfg.image_size), hw, support)  # (n, H, W) §3 blobs
        x0, y0, x1, y1 = bbox(piece.quad, feather_px + 2, hw)
        region = fill_quad(piece.quad - np.array([x0, y0], np.float32), (y1 - y0, x1 - x0)) > 0
        out = np.zeros_like(coarse)
        out[:, y0:y1, x0:x1] = refine_to_strokes(coarse[:, y0:y1, x0:x1], pasted[y0:y1, x0:x1], region)
        return cm, out & support[None]

    def reconstruct(self, image, regions, texts, **kwargs) -> EditResult:
        """Redraw the text each region already holds (``texts`` = the original strings): the §1 fidelity task."""
        return self.edit(image, regions, texts, **kwargs)

    # ---- internals
    def _check_inputs(self, img: np.ndarray, regions, texts) -> tuple[list[np.ndarray], list[str]]:
        if isinstance(texts, str):
            texts = [texts]
        if isinstance(regions, np.ndarray):  # (4,2): one quad; (n,4) boxes; (n,4,2) quads; (n,8) flat quads
            regions = [regions] if regions.shape == (4, 2) or regions.ndim == 1 else list(regions)
        regions = list(regions)
        if regions and np.isscalar(regions[0]):  # a single box/quad given flat
            regions = [regions]
        if not regions:
            raise RegionError("no region given: pass at least one box or quad")
        if len(regions) > MAX_REGIONS:
            raise RegionError(f"{len(regions)} regions given; one photo takes at most {MAX_REGIONS} per job "
                              "(split them over several jobs)")
        if len(regions) != len(texts):
            raise RegionError(f"{len(regions)} region(s) but {len(texts)} text(s): give one text per region")
        quads = [parse_region(r, img.shape[:2]) for r in regions]
        texts = [check_phrase(t, self.cfg.max_len) for t in texts]
        for quad, text in zip(quads, texts):
            check_legible(quad, text, self.cfg.max_len)
        return quads, texts

    def prepare(self, img: np.ndarray, quads: list[np.ndarray], texts: list[str], style_ref: bool = False):
        """The model batch for every region (``transforms.window_inputs`` keys), the window matrices and input crops.

        With a style-reference model (``cfg.style_ref``) the batch holds ``style`` (the window unmasked: the
        old word) and ``has_style`` (1 with ``style_ref``, else 0 and a zero ``style``).
        """
        import torch

        from ..data.geometry import apply_matrix, warp
        from ..data.transforms import window_inputs

        cfg = self.cfg
        out_hw = tuple(cfg.image_size)
        items, matrices, crops = [], [], []
        for quad, text in zip(quads, texts):
            matrix = window_matrix(quad, img.shape[:2], cfg)
            crop = np.asarray(warp(img, matrix, out_hw, border="replicate"))
            crop = np.clip(np.round(crop), 0, 255).astype(np.uint8) if crop.dtype != np.uint8 else crop
            # The same inputs a training sample gets (transforms.window_inputs), the region as the model sees it.
            items.append(window_inputs(crop, apply_matrix(matrix, quad), text, cfg, reference=style_ref))
            matrices.append(np.asarray(matrix, np.float64))
            crops.append(crop)
        cols = {k: [item[k] for item in items] for k in items[0]}
        batch = {k: torch.from_numpy(np.stack(v)).to(self.device) for k, v in cols.items()}
        return batch, matrices, crops


@dataclass
class _Job:
    """One photograph of an ``edit_many`` call on its way through: its regions, their chunks, the chunks'
    windows (``batch``: the model inputs, ``matrices`` image → window, ``crops`` the windows as cut)."""

    image: np.ndarray
    quads: list
    texts: list
    chunks: list
    item_quads: list
    batch: dict
    matrices: list
    crops: list
