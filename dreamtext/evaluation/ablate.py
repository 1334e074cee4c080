"""The paper's ablation, reproducible on this machine (DESIGN §5, §8).

Trains one model per variant for the same step budget — the supervision modes
``none`` (no mask supervision), ``gt`` (ground-truth character masks
throughout), ``balanced`` (ground truth for the first ``k_gt`` steps, then the
model's own predicted masks), and loss-form variants — evaluates each on the
benchmark split with the same protocol, and writes one comparison table.

Layout of ``out``::

    <variant>/run/       the training run (checkpoints, metrics)
    <variant>/eval/      results.json, samples.csv, report.md of its evaluation
    ablation.json        every variant's overrides, training summary and metrics
    ablation.md          the comparison table

A variant whose ``eval/results.json`` already exists with the same overrides
is not trained again, so an interrupted ablation continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

# The style reference's training data (tools/cpu/style_finetune.sh uses the same).
STYLE_REF_RECIPE = ["style_ref=true", "data.edit_pairs=0.75", "data.pair_length_delta=3", "data.pair_blank_source=0.1"]
# name → config overrides on top of the preset (the step budget and k_gt are added for every variant).
VARIANTS: dict[str, list[str]] = {
    "none": ["loss.supervision=none"],
    "gt": ["loss.supervision=gt"],
    "balanced": ["loss.supervision=balanced"],
    "balanced-max-contrast": ["loss.supervision=balanced", "loss.attn_form=max_contrast"],
    "balanced-code-mask": ["loss.supervision=balanced", "loss.mask_form=code"],
    "balanced-infonce": ["loss.supervision=balanced", "loss.align_form=infonce"],
    "balanced-ce": ["loss.supervision=balanced", "loss.attn_form=ce"],
    "balanced-gamma0": ["loss.supervision=balanced", "loss.gamma=0"],  # L_mask without the up-weighting
    "balanced-glyph": ["loss.supervision=balanced", "glyph_prior=true"],
    "balanced-no-glyph": ["loss.supervision=balanced", "glyph_prior=false"],
    # Our extensions beyond the paper (DESIGN §13, dreamtext.ocr_loss), on top of the glyph prior the shipped
    # model uses; evaluate the style reference with --task style (the paired split), the others with recon/edit.
    "balanced-style-ref": ["loss.supervision=balanced", "glyph_prior=true", *STYLE_REF_RECIPE],
    "balanced-ocr": ["loss.supervision=balanced", "glyph_prior=true", "loss.ocr=0.1"],
    "balanced-style-ref-ocr": ["loss.supervision=balanced", "glyph_prior=true", *STYLE_REF_RECIPE, "loss.ocr=0.1"],
    # The paste-back's detail (docs/editing.md, sample.upscale): the paper's bilinear enlargement against the
    # edge matte and the photo's detail transfer. A sampling switch: the arms train alike (same seed) and
    # differ in their evaluation; evaluate them with --task style, where words are enlarged as on photos.
    "balanced-bilinear": ["loss.supervision=balanced", "sample.upscale=bilinear"],
    "balanced-matte": ["loss.supervision=balanced", "sample.upscale=matte"],
    "balanced-transfer": ["loss.supervision=balanced", "sample.upscale=transfer"],
    "balanced-unsharp": ["loss.supervision=balanced", "sample.upscale=unsharp"],  # what v7 ships for edits
    # The paste-back's colour (sample.blend="auto": recolour to the old word's ink unless the verifier reads the
    # word worse) reads the old word, so only with the style reference; v7 ships it with unsharp.
    "balanced-style-ref-auto": ["loss.supervision=balanced", "glyph_prior=true", *STYLE_REF_RECIPE,
                                "sample.blend=auto"],
}
DEFAULT_VARIANTS = ("none", "gt", "balanced")
# The paper switches from ground-truth to predicted masks after 25k of ~175k steps: the same fraction here.
K_GT_FRACTION = 25 / 175


@dataclass
class AblationSettings:
    preset: str = "tiny"
    steps: int = 600  # training budget per variant
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    k_gt: int | None = None  # ground-truth phase of "balanced" (None: K_GT_FRACTION of the budget)
    overrides: list[str] = field(default_factory=list)  # extra config overrides for every variant
    seed: int = 0
    task: str = "recon"
    eval_data: str = "bench"
    eval_limit: int | None = 200  # samples of the benchmark split per variant (None: all of it)
    eval_steps: int | None = None  # sampling steps of the evaluation (None: the config's)
    eval_workers: int = 1  # evaluation processes (dreamtext eval --workers)
    eval_batch: int = 1  # records sampled together (dreamtext eval --batch)
    eval_device: str = "cpu"  # where the evaluation samples (dreamtext eval --device); training picks its own

    def check(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"unknown ablation variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
        if not self.variants:
            raise ConfigError("no ablation variant given")
        if self.steps < 1:
            raise ConfigError(f"the step budget must be at least 1, got {self.steps}")
        from .evaluate import check_device

        check_device(self.eval_device)  # before hours of training, not after

    def k_gt_steps(self) -> int:
        return self.k_gt if self.k_gt is not None else max(1, round(self.steps * K_GT_FRACTION))


def variant_overrides(settings: AblationSettings, name: str, run_dir: Path) -> list[str]:
    """The full override list that defines variant ``name``'s training run."""
    return [f"train.max_steps={settings.steps}", f"train.seed={settings.seed}", f"train.out_dir={run_dir}",
            f"loss.k_gt={settings.k_gt_steps()}", *settings.overrides, *VARIANTS[name]]


def same_experiment(a: list[str], b: list[str]) -> bool:
    """Whether two variants' override lists define the same training, wherever their run folders lie.

    ``train.out_dir`` only says where the run was written, so an ablation folder
    can be moved, or variants trained on another machine copied in, and still be reused.
    """
    def portable(overrides):
        return [o for o in overrides if not o.startswith("train.out_dir=")]

    return portable(a) == portable(b)


def _train_loss(summary) -> float | None:
    """The last logged total training loss of the trainer's run summary (``metrics["total"]``)."""
    value = (summary.get("metrics") or {}).get("total") if isinstance(summary, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def run_ablation(settings: AblationSettings, out_dir: str | Path, progress: bool = True) -> list[dict]:
    """Train and evaluate every variant; write ``ablation.json`` / ``ablation.md`` after each one."""
    from ..config import load_config
    from ..io_utils import atomic_write_text
    from ..train.trainer import train
    from .evaluate import EvalSettings, evaluate

    settings.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name in settings.variants:
        run_dir, eval_dir = out / name / "run", out / name / "eval"
        overrides = variant_overrides(settings, name, run_dir)
        done = eval_dir / "results.json"
        previous = json.loads(done.read_text()) if done.is_file() else None
        if previous is not None and same_experiment(previous.get("ablation", {}).get("overrides") or [], overrides):
            print(f"ablate: {name}: already evaluated, reusing {done}")
            entries.append(previous["ablation"])
            continue
        cfg = load_config(settings.preset, overrides=overrides)
        print(f"ablate: training {name} ({settings.steps} steps; {' '.join(VARIANTS[name])})")
        t0 = time.perf_counter()
        summary = train(cfg, resume=True, progress=progress)  # continues an interrupted run of this variant
        train_seconds = time.perf_counter() - t0
        if summary.get("stopped") != "finished":  # Ctrl-C or a signal: do not score a half-trained model
            print(f"ablate: training of {name} {summary.get('stopped')}; stopping the ablation here")
            break
        eval_settings = EvalSettings(data=settings.eval_data, task=settings.task, ckpt=str(run_dir),
                                     limit=settings.eval_limit, seed=settings.seed, steps=settings.eval_steps,
                                     workers=settings.eval_workers, batch=settings.eval_batch,
                                     device=settings.eval_device)
        results = evaluate(eval_settings, eval_dir, progress=progress)  # loads the run's EMA weights
        entry = {"name": name, "overrides": overrides, "changes": VARIANTS[name], "train_loss": _train_loss(summary),
                 "train_seconds": train_seconds, "weights_sha256": results["weights_sha256"],
                 "n_samples": results["n_samples"], "metrics": results["metrics"]}
        results["ablation"] = entry  # remembered beside the evaluation so a rerun can reuse it
        atomic_write_text(done, json.dumps(results, indent=2, default=str) + "\n")
        entries.append(entry)
        _write_table(out, settings, entries)
    _write_table(out, settings, entries)
    return entries


def _write_table(out: Path, settings: AblationSettings, entries: list[dict]) -> None:
    from ..io_utils import atomic_write_text
    from .report import ablation_markdown

    header = (f"# Ablation: preset `{settings.preset}`, {settings.steps} training steps per variant, "
              f"k_gt = {settings.k_gt_steps()}, {settings.task} on `{settings.eval_data}` "
              f"({'all' if settings.eval_limit is None else settings.eval_limit} samples), seed {settings.seed}"
              + (f"; every variant also: `{' '.join(settings.overrides)}`" if settings.overrides else ""))
    atomic_write_text(out / "ablation.md", ablation_markdown(entries, header))
    atomic_write_text(out / "ablation.json", json.dumps({"settings": dataclasses.asdict(settings),
                                                         "variants": entries}, indent=2, default=str) + "\n")
