"""The trainer's plumbing, kept apart from the loop so each piece is testable alone.

- ``lr_at``: linear warm-up then constant or cosine decay, a pure function of
  the step (so a resumed run needs no scheduler state);
- ``step_seed``: the seed of one (step, process, micro-batch), from which the
  noise, timesteps, condition dropout and data of that step are drawn — a run
  killed at any step and resumed draws exactly what the uninterrupted run drew;
- ``flatten_optimizer_state`` / ``unflatten_optimizer_state``: an optimiser's
  ``state_dict`` as flat named tensors (for safetensors) plus a JSON part;
- ``get_rng_state`` / ``set_rng_state``: python, numpy and torch RNGs as JSON;
- ``MetricsLogger``: one JSON line per logged step (and TensorBoard scalars
  when ``tensorboard`` is installed);
- ``check_finite``: the NaN/inf guard;
- ``prune_checkpoints``: keep the newest ``keep`` checkpoints of a run.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DreamTextError


class NonFiniteLossError(DreamTextError, FloatingPointError):
    """A training loss became NaN or infinite; the run stops, its last good checkpoint is kept."""


# ----------------------------------------------------------------------------- schedule and seeds


def lr_at(step: int, base_lr: float, warmup_steps: int, max_steps: int, schedule: str) -> float:
    """Learning rate of optimiser step ``step`` (0-based).

    Warm-up: ``base_lr·(step+1)/warmup_steps`` for the first ``warmup_steps``
    steps; then ``constant`` or ``cosine`` (half a cosine from ``base_lr`` down
    to 0 at ``max_steps``).
    """
    if schedule not in ("constant", "cosine"):
        raise DreamTextError(f"unknown lr_schedule {schedule!r}; choose 'constant' or 'cosine'")
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    decay_steps = max(1, max_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def step_seed(seed: int, step: int, rank: int = 0, micro: int = 0) -> int:
    """A 63-bit seed that depends on every argument and on nothing else."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(step), int(rank), int(micro)])
    hi, lo = (int(x) for x in ss.generate_state(2, dtype=np.uint32))
    return (hi & 0x7FFFFFFF) << 32 | lo


# ----------------------------------------------------------------------------- optimiser state


def flatten_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """``optimizer.state_dict()`` → (``{"state.<param>.<key>": tensor}``, JSON-able rest).

    Non-tensor per-parameter values (some optimisers keep ``step`` as a float)
    and the param groups go into the JSON part.
    """
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, pstate in state_dict["state"].items():
        for key, value in pstate.items():
            name = f"state.{pid}.{key}"
            if torch.is_tensor(value):
                tensors[name] = value.detach().cpu().contiguous().clone()
            else:
                scalars[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Inverse of :func:`flatten_optimizer_state` (a dict for ``optimizer.load_state_dict``)."""
    state: dict[int, dict[str, Any]] = {}
    items = list(tensors.items()) + list(meta.get("scalars", {}).items())
    for name, value in items:
        m = re.fullmatch(r"state\.(\d+)\.(.+)", name)
        if m is None:
            raise DreamTextError(f"optimizer state entry {name!r} is not of the form state.<param>.<key>")
        state.setdefault(int(m.group(1)), {})[m.group(2)] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ----------------------------------------------------------------------------- RNG state


def get_rng_state() -> dict:
    """Python, NumPy and torch (CPU and, where present, CUDA) RNG states as JSON-able data."""
    py = random.getstate()
    np_state = np.random.get_state()
    out = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        out["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return out


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# ----------------------------------------------------------------------------- guard and logging


def check_finite(losses: dict[str, torch.Tensor | float], step: int) -> None:
    """Raise :class:`NonFiniteLossError` naming every loss term that is NaN or inf."""
    bad = []
    for name, value in losses.items():
        v = float(value.detach().float().mean()) if torch.is_tensor(value) else float(value)
        if not math.isfinite(v):
            bad.append(f"{name}={v}")
    if bad:
        raise NonFiniteLossError(
            f"loss became non-finite at step {step} ({', '.join(bad)}); training stopped, the last good "
            "checkpoint is kept — lower train.lr, check the data, or turn off train.bf16"
        )


class MetricsLogger:
    """Appends ``{"step": n, name: value, ...}`` lines to ``metrics.jsonl``.

    On resume from step ``s``, lines with ``step > s`` (logged by the killed run
    after its last checkpoint) are dropped first, so the file reads as one run.
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("")
        elif self.path.exists():
            kept = [ln for ln in self.path.read_text().splitlines() if _line_step(ln) is not None
                    and _line_step(ln) <= resume_step]
            self.path.write_text("".join(ln + "\n" for ln in kept))
        self._file = open(self.path, "a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the optional tensorboard package

                self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"),
                                         purge_step=None if resume_step is None else resume_step + 1)
            except ImportError:
                self._tb = None

    def log(self, step: int, values: dict[str, float]) -> None:
        record = {"step": int(step)}
        record.update({k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in values.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float, np.floating)):
                    self._tb.add_scalar(k, float(v), step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _line_step(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


# ----------------------------------------------------------------------------- checkpoints


_STEP_DIR = re.compile(r"step_(\d+)")


def checkpoint_dirs(ckpt_root: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every complete ``step_<n>`` checkpoint under ``ckpt_root``, oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.fullmatch(p.name)
        if m and p.is_dir() and (p / "state.json").is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def prune_checkpoints(ckpt_root: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (``keep <= 0`` keeps all); returns the deleted."""
    if keep <= 0:
        return []
    removed = []
    for _, path in checkpoint_dirs(ckpt_root)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
