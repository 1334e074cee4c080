"""The evaluation protocol record by record (DESIGN §8): settings, the records, one edit, one scored row.

``evaluate.evaluate`` runs it over a whole source (in this process or in ``eval_workers``' processes) and
writes the outputs; this module is what each process runs: ``evaluate_part`` edits its share of the
records (record ``i`` with seed ``seed + i``) and scores each (``_score``; the ``style`` task against its
pair's ground truth, ``style_eval``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DreamTextError
from ..model.checkpoint import weights_sha256
from ..sample_options import MAX_CANDIDATES, MAX_SEED
from ..visualize import context_box

TASKS = ("recon", "edit", "style")


@dataclass
class EvalSettings:
    """What one evaluation run does (everything that changes a number is here and in results.json)."""

    data: str = "bench"  # a data source spec of dreamtext.data.sources.open_source
    task: str = "recon"  # "recon" | "edit" | "style" (the paired benchmark; --data is then its own split)
    ckpt: str | None = None  # run / checkpoint / pipeline dir; None: the shipped model
    limit: int | None = None  # evaluate the first N records (None: the whole source)
    seed: int = 0  # sample i uses seed + i
    steps: int | None = None  # sampling steps (None: the model config's sample.steps)
    guidance: float | None = None  # CFG scale (None: sample.guidance)
    sampler: str | None = None  # "ddim" | "euler" | "dpm++" (None: sample.sampler)
    restarts: int | None = None  # restart-sampling passes (None: sample.restarts)
    blend: str | None = None  # paste-back, one of BLEND_MODES (None: sample.blend); OCR reads the pasted photo
    mask_rule: str | None = None  # predicted masks, "attention" | "strokes" (None: sample.mask_rule)
    upscale: str | None = None  # regions larger than the window, one of UPSCALE_MODES (None: sample.upscale)
    candidates: int | None = None  # samples per record, the word verifier keeps the best (None: sample.candidates)
    ocr: str = "rapidocr"  # recogniser spec, see dreamtext.ocr.make_recognizer
    split: str = "bench"  # the split asked of the source (the bench source is always its fixed split)
    report_samples: int = 8  # rows in each of the best / worst picture grids
    lpips_dir: str | None = None  # LPIPS weights folder (None: $DREAMTEXT_LPIPS_DIR)
    fid_inception: str | None = None  # TorchScript FID Inception (None: $DREAMTEXT_FID_INCEPTION)
    ceiling_only: bool = False  # only measure the OCR on the untouched inputs (no model runs)
    workers: int = 1  # processes (spawned: a calling script needs `if __name__ == "__main__":`), each with its own model
    batch: int = 1  # records sampled together (one UNet batch; each keeps its own seed, so the noise is the same)
    # A style-reference model sees the old word in edit / style (None: sample.use_style_ref); recon: never.
    style_ref: bool | None = None
    device: str = "cpu"  # where the model samples ("cpu", "cuda", "cuda:1"); noise is drawn on the CPU either way

    def check(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED - 10**7:
            raise ConfigError(f"--seed must be a whole number from 0 to {MAX_SEED - 10**7} (sample i uses seed + i), "
                              f"got {self.seed!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {self.limit}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.batch < 1:
            raise ConfigError(f"--batch must be at least 1, got {self.batch}")
        if self.report_samples < 1:
            raise ConfigError(f"report_samples must be at least 1, got {self.report_samples}")
        if self.task == "recon" and self.style_ref:
            raise ConfigError("the reconstruction protocol masks the region: a style reference would show the model "
                              "the word it must redraw (use it with --task edit or style)")
        if self.candidates is not None and not 1 <= self.candidates <= MAX_CANDIDATES:
            raise ConfigError(f"--candidates must be from 1 to {MAX_CANDIDATES}, got {self.candidates}")
        check_device(self.device)

    def candidates_for(self, cfg) -> int:
        """Samples per record this run draws with a model of config ``cfg`` (``--candidates`` or its default)."""
        return cfg.sample.candidates if self.candidates is None else self.candidates


def check_device(device: str) -> None:
    """Refuse a device torch does not know or this machine lacks, before any model is built."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"unknown device {device!r} (use cpu, cuda or cuda:N): {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r}: the evaluation runs on cpu or cuda")


def target_text(record, index: int, task: str) -> str:
    """What the model is asked to write for record ``index``: its own word, or the fixed edit word."""
    if task == "recon":
        return record.text
    from ..data.words import edit_word_for

    return edit_word_for(record.text, index)


def sample_strip(image: np.ndarray, output: np.ndarray, quad: np.ndarray, char_masks: np.ndarray | None,
                 target: str, reading: str, gt_reading: str, height: int = 64) -> bytes:
    """One report row as PNG bytes: input | masked | output | character masks | what the OCR read."""
    from ..data.geometry import fill_quad
    from ..visualize import mask_overlay, reading_strip_png

    rows, cols = context_box(quad, image.shape[:2])
    region = fill_quad(quad, image.shape[:2]) > 0  # the region mask, as the model is given it
    masked = np.where(region[..., None], np.uint8(128), image)
    if char_masks is not None and len(char_masks) and char_masks.any():
        masks_pic = mask_overlay(output, char_masks, dim=0.3)
    else:
        masks_pic = output
    panels = [p[rows, cols] for p in (image, masked, output, masks_pic)]
    return reading_strip_png(panels, target, reading, gt_reading, "input", height)


def _lpips_pair(model, a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS on the whole image, upscaled so its short side is at least 64 px (AlexNet's pooling needs room)."""
    from PIL import Image

    from .metrics import lpips_distance

    short = min(a.shape[:2])
    if short < 64:
        size = (round(a.shape[1] * 64 / short), round(a.shape[0] * 64 / short))
        a = np.asarray(Image.fromarray(a).resize(size, Image.BICUBIC))
        b = np.asarray(Image.fromarray(b).resize(size, Image.BICUBIC))
    return lpips_distance(model, a, b)


def open_records(settings: EvalSettings, cfg):
    from ..data.sources import open_source

    if settings.task == "style":
        from ..data.pairs import StylePairs

        source = StylePairs(cfg)
    else:
        source = open_source(settings.data, cfg, split=settings.split, seed=settings.seed)
    try:
        total = len(source)
    except TypeError:
        total = None
    if settings.limit is not None:
        total = settings.limit if total is None else min(total, settings.limit)
    if total is None:
        raise ConfigError(f"data source {settings.data!r} has no end: pass --limit N")
    return source, total


def evaluate_part(settings: EvalSettings, pipeline, cfg, part: int, parts: int, tick, source_total=None) -> dict:
    """Records ``part, part + parts, ...`` (below the limit) → rows, strips, skips, FID features, notices.

    ``tick(row_or_None)`` is called after every record (progress); ``source_total``: the opened source and
    its length when the caller has them. The result is plain data (it crosses process boundaries when
    ``settings.workers`` > 1).
    """
    from ..edit.layout import check_phrase
    from . import metrics as M
    from .ocr import make_recognizer

    recognizer = make_recognizer(settings.ocr)
    lpips_model = inception = None
    notices = []
    if not settings.ceiling_only:
        lpips_model, lpips_notice = M.load_lpips(settings.lpips_dir)
        inception, fid_notice = M.load_inception(settings.fid_inception)
        notices = [n for n in (lpips_notice, fid_notice) if n]
    source, total = source_total or open_records(settings, cfg)
    rows, strips, skipped = [], {}, []
    fid_feats: tuple[list, list] = ([], [])  # Inception features of outputs and of inputs, one row per sample
    pending: list[tuple[int, object, str]] = []  # (index, record, target) waiting for one batched edit
    truths: dict[int, object] = {}  # style task: record index → the pair's ground-truth edit

    def skip(index, record, error):  # a record this model cannot take (too long, odd characters, bad quad)
        skipped.append({"index": index, "key": record.key, "text": record.text, "reason": str(error)})
        tick(None)

    def keep(index, record, row, strip, output):
        rows.append(row)
        if strip is not None:
            strips[index] = strip
        if inception is not None:  # features now, so no image has to stay in memory until the end
            fid_feats[0].append(M.inception_features(inception, [output])[0])
            fid_feats[1].append(M.inception_features(inception, [record.image])[0])
        tick(row)

    def flush():
        try:
            edited = _edit_batch(settings, pipeline, pending)
        except DreamTextError:  # one record's region is bad: edit them one by one so only it is skipped
            edited = None
        for k, (index, record, target) in enumerate(pending):
            try:
                result, seconds = edited[k] if edited is not None else _edit_batch(settings, pipeline, pending[k:k + 1])[0]
                scored = _score(settings, recognizer, lpips_model, record, index, target, result, seconds,
                                truths.pop(index, None))
            except DreamTextError as e:
                skip(index, record, e)
                continue
            keep(index, record, *scored)
        pending.clear()

    for index, record in zip(range(part, total, parts), source.iter_part(part, parts)):
        try:
            check_phrase(record.text, cfg.max_len)  # the original must be in the charset for SeqAcc to mean anything
            if settings.ceiling_only:
                keep(index, record, _ceiling_row(recognizer, record, index), None, None)
                continue
            if settings.task == "style":
                truths[index] = source.target(index)
                target = truths[index].text
            else:
                target = target_text(record, index, settings.task)
            pending.append((index, record, check_phrase(target, cfg.max_len)))
        except DreamTextError as e:
            skip(index, record, e)
            continue
        if len(pending) >= settings.batch:
            flush()
    flush()
    return {"rows": rows, "strips": strips, "skipped": skipped, "fid_feats": fid_feats, "notices": notices,
            "ocr": recognizer.name, "lpips_on": lpips_model is not None, "fid_on": inception is not None}


def _verifier_identity(cfg) -> dict:
    """Where the word verifier of ``cfg.sample.verifier`` came from and the SHA-256 of its weights."""
    from ..model.verifier import SHIPPED_VERIFIER_DIR, load_verifier

    path = cfg.sample.verifier
    return {"path": str(path) if path else f"shipped ({SHIPPED_VERIFIER_DIR.name})",
            "weights_sha256": weights_sha256(load_verifier(path)[0])}


def _refiner_identity(cfg) -> dict:
    """Where the detail refiner of ``cfg.sample.refiner`` came from and the SHA-256 of its weights."""
    from ..model.refiner import SHIPPED_REFINER_DIR, load_refiner

    path = cfg.sample.refiner
    return {"path": str(path) if path else f"shipped ({SHIPPED_REFINER_DIR.name})",
            "weights_sha256": weights_sha256(load_refiner(path)[0])}


def load_pipeline(settings: EvalSettings, pipeline):
    """The pipeline (None for a ceiling-only run without a checkpoint) and the config the data is cut with."""
    from ..config import load_config
    from ..edit.pipeline import DreamTextPipeline

    if pipeline is None and (settings.ckpt is not None or not settings.ceiling_only):
        pipeline = DreamTextPipeline.from_pretrained(settings.ckpt, device=settings.device)
    if settings.ceiling_only:
        return None, pipeline.cfg if pipeline is not None else load_config("tiny")
    if settings.candidates_for(pipeline.cfg) > 1:
        pipeline.verifier  # load it now: a missing or mismatching verifier stops the run, it does not skip records
    return pipeline, pipeline.cfg


def _row_base(record, index: int) -> dict:
    return {"index": index, "key": record.key, "source": record.source, "text": record.text}


def _ceiling_row(recognizer, record, index: int) -> dict:
    """A ceiling-only row: the OCR on the untouched word crop."""
    from .ocr import rectify_quad

    gt_reading = recognizer.read([rectify_quad(record.image, record.word_quad)])[0]
    return {**_row_base(record, index), "ocr_gt": gt_reading, **_ceiling(gt_reading, record.text)}


def style_ref_used(settings: EvalSettings, cfg) -> bool:
    """Whether this run shows the model the old word (DESIGN §13): never for recon, else as set or configured."""
    if settings.task == "recon" or not cfg.style_ref:
        return False
    return bool(cfg.sample.use_style_ref if settings.style_ref is None else settings.style_ref)


def upscale_used(settings: EvalSettings) -> str | None:
    """The paste-back's detail mode: the paper's bilinear enlargement for recon unless asked, else as set or
    configured (None: the model's sample.upscale) — so reconstruction stays the paper's protocol whatever a
    model ships for edits."""
    if settings.upscale is None and settings.task == "recon":
        return "bilinear"
    return settings.upscale


def sampling_options(settings: EvalSettings, cfg):
    """The ``SampleOptions`` every record of this run is edited with (the pipeline resolves them the same way)."""
    from ..sample_options import SampleOptions

    return SampleOptions.resolve(cfg, steps=settings.steps, guidance=settings.guidance, sampler=settings.sampler,
                                 restarts=settings.restarts, blend=settings.blend, mask_rule=settings.mask_rule,
                                 candidates=settings.candidates, style_ref=style_ref_used(settings, cfg),
                                 upscale=upscale_used(settings))


def _edit_batch(settings: EvalSettings, pipeline, pending: list) -> list:
    """``pending`` [(index, record, target)] edited in one sampling batch → [(EditResult, seconds per record)].

    Record ``index`` is seeded ``settings.seed + index`` whatever it is batched with.
    """
    if not pending:
        return []
    t0 = time.perf_counter()
    results = pipeline.edit_many([(record.image, [record.word_quad], [target]) for _, record, target in pending],
                                 steps=settings.steps, guidance=settings.guidance, sampler=settings.sampler,
                                 restarts=settings.restarts, blend=settings.blend, mask_rule=settings.mask_rule,
                                 candidates=settings.candidates, seeds=[settings.seed + index for index, _, _ in pending],
                                 style_ref=style_ref_used(settings, pipeline.cfg), upscale=upscale_used(settings))
    seconds = (time.perf_counter() - t0) / len(pending)
    return [(result, seconds) for result in results]


def _score(settings: EvalSettings, recognizer, lpips_model, record, index: int, target: str, result,
           seconds: float, truth=None):
    """One edited sample → (row of numbers, report strip PNG, output image).

    ``truth`` (the style task): the pair's ground-truth edit; the OCR ceiling is then its reading of the
    ground truth against the new word, and the image metrics compare with it (``style_eval.score_pair``).
    """
    from . import metrics as M
    from .ocr import rectify_quad

    output = np.asarray(result.image)
    quad = result.regions[0].quad
    reference = record if truth is None else truth  # what the OCR's ceiling reads
    reading, gt_reading = recognizer.read([rectify_quad(output, quad), rectify_quad(reference.image, quad)])
    row = {
        **_row_base(record, index), "target": target, "ocr": reading, "ocr_gt": gt_reading,
        "seq_acc_ci": M.seq_acc(reading, target), "seq_acc_cs": M.seq_acc(reading, target, case_sensitive=True),
        "ned": M.ned(reading, target), "ned_cs": M.ned(reading, target, case_sensitive=True),
        **_ceiling(gt_reading, reference.text),
        **M.image_metrics(output, record.image, quad),
    }
    if truth is not None:
        from .style_eval import pair_strip, score_pair

        row |= score_pair(output, truth, quad)
    if result.regions[0].candidate_scores is not None:  # which candidate the verifier kept, and its reading
        row["candidate"] = result.regions[0].chosen
        row["verifier_reading"] = result.regions[0].verifier_reading
    pred_masks = result.regions[0].char_masks
    if settings.task == "recon" and record.char_masks is not None:
        row["mask_miou"] = M.char_mask_miou(pred_masks, record.char_masks)
        # The letter-blind baseline on the same record: a mask mIoU means something only above it.
        slices = M.even_slice_masks(quad, len(record.text), record.image.shape[:2])
        row["mask_miou_slices"] = M.char_mask_miou(slices, record.char_masks)
    if lpips_model is not None:
        row["lpips"] = _lpips_pair(lpips_model, output, record.image)
    row["seconds"] = seconds
    if truth is not None:
        strip = pair_strip(record.image, output, truth.image, quad, pred_masks, target, reading, gt_reading)
    else:
        strip = sample_strip(record.image, output, quad, pred_masks, target, reading, gt_reading)
    return row, strip, output


def _ceiling(gt_reading: str, text: str) -> dict:
    from . import metrics as M

    return {"ocr_ceiling_seq_acc_ci": M.seq_acc(gt_reading, text),
            "ocr_ceiling_seq_acc_cs": M.seq_acc(gt_reading, text, case_sensitive=True),
            "ocr_ceiling_ned": M.ned(gt_reading, text)}
