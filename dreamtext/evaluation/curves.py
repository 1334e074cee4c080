"""The training-curve picture of a run: each loss term, mask mIoU and the benchmark probe's SeqAcc over steps.

Several runs (one fine-tuned from another's weights, say on other hardware with
another batch size) are drawn one after another on an axis of samples seen.

Reads the run's ``metrics.jsonl`` (training lines, and the ``probe/*`` lines the
trainer writes every ``train.probe_every`` steps) and draws four panels with
matplotlib (the ``plot`` extra):

1. L_total and L_mask (log scale) — the denoising error dominates the total;
2. L_attn, L_align, L_id (log scale) — the auxiliary terms of §4;
3. mIoU of the predicted vs ground-truth character masks: on training batches
   (every logged step) and on the bench probe (recon), beside the letter-blind
   baseline of even slices of the word box on the same records (dashed);
4. the probe's case-insensitive SeqAcc (and 1 − NED, dotted) for
   reconstruction and editing, with the OCR's own ceiling on the same crops dashed.

Noisy training series are drawn faint with an exponential moving average on top
(in log space on the log-scale loss panels). Where the probe's sampling settings
change within a run (its ``probes/step_*/recon/results.json``), the probe panels
get a vertical line: the points on either side were not measured alike.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DatasetError

LOSS_PANELS = (
    ("denoising loss", ("loss/total", "loss/mask")),
    ("auxiliary losses (§4)", ("loss/attn", "loss/align", "loss/id")),
)


def series(records: list[dict], key: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
    """(x, values) of ``key`` over the records that have a finite value for it, in x order (x: "step" or "x")."""
    pts = sorted((r[x], float(r[key])) for r in records
                 if isinstance(r.get(key), (int, float)) and math.isfinite(float(r[key])))
    if not pts:
        return np.zeros(0, np.int64), np.zeros(0)
    steps, values = zip(*pts)
    return np.asarray(steps), np.asarray(values)


def probe_sampling_changes(run_dir: str | Path) -> list[tuple[int, str]]:
    """(step, label) where the probe's sampling settings differ from the previous probe's.

    Read from each ``probes/step_<n>/recon/results.json``; files from before restart sampling lack
    ``restarts`` (0). Unreadable files are skipped (a picture is no place to fail).
    """
    import json

    changes, previous = [], None
    for path in sorted(Path(run_dir).glob("probes/step_*/recon/results.json")):
        try:
            step = int(path.parent.parent.name.split("_")[1])
            s = json.loads(path.read_text())["sampling"]
            now = (s["sampler"], s["steps"], s["guidance"], s.get("restarts", 0))
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue
        if previous is not None and now != previous:
            changes.append((step, f"probe sampling from here: {now[0]}, {now[1]} steps, {now[3]} restarts"))
        previous = now
    return changes  # in step order: the step_<n> directory names are zero-padded


def smooth(values: np.ndarray, weight: float = 0.8) -> np.ndarray:
    """Bias-corrected exponential moving average (TensorBoard's smoothing): ``s_i`` of ``v_0..v_i``."""
    out = np.empty(len(values))
    acc, norm = 0.0, 0.0
    for i, v in enumerate(values):
        acc = weight * acc + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out[i] = acc / norm
    return out


def _read_run(run_dir: Path) -> list[dict]:
    from ..train.utils import read_metrics

    records = read_metrics(run_dir, required=True)
    if not any("loss/total" in r for r in records):
        raise DatasetError(f"{str(run_dir / 'metrics.jsonl')!r} has no logged training step yet")
    return records


def samples_per_step(run_dir: Path) -> float:
    """Training samples per optimiser step of a run, from its latest checkpoint (all processes, accumulation)."""
    from ..model.checkpoint import latest_checkpoint, read_json

    ckpt = latest_checkpoint(run_dir)
    state = read_json(ckpt / "state.json") if ckpt is not None else {}
    seen, step = (state.get("data") or {}).get("samples_seen"), state.get("step")
    if not (isinstance(seen, int) and isinstance(step, int) and step > 0):
        raise DatasetError(f"run {str(run_dir)!r} has no checkpoint saying how many samples a step took: "
                           "runs drawn one after another are placed by samples seen")
    return seen / step


def chain_runs(run_dirs: list[Path]) -> tuple[list[dict], list[tuple[float, str]], str]:
    """Every record of the runs with ``x`` (its place on one axis) and ``run`` (its index); boundaries; axis label.

    One run: x is the step. Several (a run fine-tuned from another's weights, e.g. on other hardware with
    another batch size): the runs follow one another on an axis of training samples seen (thousands), each
    starting where the previous one's last logged step ended.
    """
    if len(run_dirs) == 1:
        records = _read_run(run_dirs[0])
        return [dict(r, x=r["step"], run=0) for r in records], [], "step"
    out, boundaries, offset = [], [], 0.0
    for i, run_dir in enumerate(run_dirs):
        records, per_step = _read_run(run_dir), samples_per_step(run_dir) / 1000.0
        if i:
            boundaries.append((offset, f"{run_dir.name} ({per_step * 1000:.0f}/step)"))
        out += [dict(r, x=offset + r["step"] * per_step, run=i) for r in records]
        offset += max(r["step"] for r in records) * per_step
    return out, boundaries, "training samples seen (thousands)"


def plot_run(run_dir: str | Path | list, out: str | Path, title: str | None = None) -> Path:
    """Draw the curves of a run — or of several runs drawn one after another — into ``out`` (PNG, atomic)."""
    plt = _pyplot()
    run_dirs = [Path(d) for d in (run_dir if isinstance(run_dir, (list, tuple)) else [run_dir])]
    records, boundaries, x_label = chain_runs(run_dirs)

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for ax, (name, keys) in zip(axes[0], LOSS_PANELS):
        for key in keys:
            steps, values = series(records, key, x="x")
            if len(steps) == 0:
                continue
            (line,) = ax.plot(steps, values, alpha=0.25, linewidth=0.8)
            # Averaged in log space: on a log axis a plain average is dominated by the early, large values.
            trend = np.exp(smooth(np.log(np.maximum(values, 1e-12))))
            ax.plot(steps, trend, color=line.get_color(), label=key.split("/", 1)[1])
        ax.set_yscale("log")
        ax.set_title(name)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)

    ax = axes[1][0]
    steps, values = series(records, "miou", x="x")
    if len(steps):
        (line,) = ax.plot(steps, values, alpha=0.25, linewidth=0.8)
        ax.plot(steps, smooth(values), color=line.get_color(), label="training batches")
    steps, values = series(records, "probe/mask_miou", x="x")
    if len(steps):
        ax.plot(steps, values, "o-", label="bench probe (recon)")
    steps, values = series(records, "probe/mask_miou_slices", x="x")
    if len(steps):  # the same records at every probe: one value, drawn across the panel
        ax.axhline(values[-1], color="black", linestyle="--", linewidth=1,
                   label=f"even slices of the box, letter-blind ({values[-1]:.3f})")
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="target 0.5")
    ax.set_ylim(0, 1)
    ax.set_title("character-mask mIoU (predicted vs ground truth)")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[1][1]
    for task, label in (("recon", "reconstruction"), ("edit", "editing")):
        steps, values = series(records, f"probe/{task}_seq_acc", x="x")
        if len(steps):
            (line,) = ax.plot(steps, values, "o-", label=f"{label} SeqAcc")
            # 1 − NED (character-level similarity) moves long before a whole word is read right.
            steps, values = series(records, f"probe/{task}_ned", x="x")
            if len(steps):
                ax.plot(steps, 1.0 - values, "s:", color=line.get_color(), label=f"{label} 1 − NED")
    steps, values = series(records, "probe/ocr_ceiling", x="x")
    if len(steps):
        ax.plot(steps, values, "--", color="black", linewidth=1, label="OCR ceiling (ground-truth crops)")
    ax.set_ylim(0, 1)
    ax.set_title("bench probe: SeqAcc and 1 − NED (case-insensitive)")
    if any(k.startswith("probe/") for r in records for k in r):
        ax.legend(loc="upper left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no probe yet\n(train.probe_every)", ha="center", va="center", transform=ax.transAxes)
    marks = []
    for i, run in enumerate(run_dirs):  # probe-sampling changes, placed on the x axis like the run's records
        x_of = {r["step"]: r["x"] for r in records if r["run"] == i}
        marks += [(x_of[step], label) for step, label in probe_sampling_changes(run) if step in x_of]
    for x, label in marks:
        for ax in axes[1]:
            ax.axvline(x, color="red", linestyle=":", linewidth=1)
        axes[1][1].text(x, 0.97, " " + label, color="red", fontsize=7, va="top", ha="right", rotation=90)
    for x, label in boundaries:
        for ax in axes.flat:
            ax.axvline(x, color="purple", linestyle="-", linewidth=1, alpha=0.6)
        axes[1][0].text(x, 0.97, " " + label, color="purple", fontsize=7, va="top", ha="left", rotation=90)
    if boundaries:  # runs of different sizes one after another: each gets room on a log axis
        axes[0][0].set_xscale("log")
    for ax in axes[1]:
        ax.set_xlabel(x_label)
    if len(run_dirs) == 1:
        default_title = f"{run_dirs[0].name}: {max(r['step'] for r in records)} steps"
    else:
        default_title = " → ".join(d.name for d in run_dirs) + f": {max(r['x'] for r in records):.0f}k samples"
    fig.suptitle(title or default_title)
    return _save_figure(fig, out)


def plot_arms(run_dirs: list, out: str | Path, title: str | None = None) -> Path:
    """Paired runs side by side on one step axis (arms of one experiment, e.g. with and without a loss term):
    one panel per logged loss term and the training batches' mask mIoU, one smoothed line per run."""
    plt = _pyplot()
    runs = [(Path(d).name, _read_run(Path(d))) for d in run_dirs]
    keys = [k for k in ("loss/total", "loss/mask", "loss/attn", "loss/ocr", "miou")
            if any(k in r for _, records in runs for r in records)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for i, (name, records) in enumerate(runs):
            steps, values = series(records, key)
            if len(steps):  # one colour per run in every panel
                ax.plot(steps, values, alpha=0.2, linewidth=0.8, color=f"C{i}")
                ax.plot(steps, smooth(values, 0.9), color=f"C{i}", label=name)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.suptitle(title or " vs ".join(name for name, _ in runs))
    return _save_figure(fig, out)


def _pyplot():
    """matplotlib's pyplot on the Agg backend, or a ConfigError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("the curve picture needs matplotlib: pip install 'dreamtext[plot]'") from None
    return plt


def _save_figure(fig, out: str | Path) -> Path:
    """``fig`` laid out and written to ``out`` as PNG (atomically), then closed."""
    import io

    import matplotlib.pyplot as plt

    from ..io_utils import atomic_write_bytes

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    out = Path(out)
    atomic_write_bytes(out, buf.getvalue())
    return out
