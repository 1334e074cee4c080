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

from ..errors import ConfigError, DatasetError, DreamTextError


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

    @staticmethod
    def format_line(step: int, values: dict) -> str:
        """One ``metrics.jsonl`` line: ``{"step": n, name: value, ...}`` (numbers as plain floats)."""
        record = {"step": int(step)}
        record.update({k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in values.items()})
        return json.dumps(record) + "\n"

    def log(self, step: int, values: dict[str, float]) -> None:
        self._file.write(self.format_line(step, values))
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


def read_metrics(run_dir: str | Path, required: bool = False) -> list[dict]:
    """The records of a run's ``metrics.jsonl`` ([] when it has none, unless ``required``).

    A file that is not JSON lines, or a missing one when ``required``, is a :class:`DatasetError` naming it.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        if required:
            raise DatasetError(f"{str(run_dir)!r} has no metrics.jsonl: is it a training run directory?")
        return []
    try:
        return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    except ValueError as e:
        raise DatasetError(f"{str(path)!r} is not JSON lines: {e}") from None


# ----------------------------------------------------------------------------- checkpoints


def prune_checkpoints(ckpt_root: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (``keep <= 0`` keeps all); returns the deleted."""
    if keep <= 0:
        return []
    removed = []
    from ..model.checkpoint import complete_checkpoints

    for _, path in complete_checkpoints(ckpt_root)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


# ----------------------------------------------------------------------------- resumable data stream


def micro_batch_indices(micro: int, batch_size: int, rank: int, world_size: int) -> range:
    """Global sample indices of micro-batch ``micro`` (= step·grad_accum + k) on process ``rank``.

    Micro-batch ``m`` of the whole job covers samples ``[m·W·B, (m+1)·W·B)``;
    process ``r`` takes the ``r``-th slice of ``B``. So processes never share a
    sample, and where the stream stands is the micro-batch counter alone — a
    resumed run starts at ``step·grad_accum`` and reads what the killed one would have.
    """
    start = (int(micro) * world_size + rank) * batch_size
    return range(start, start + batch_size)


class _MicroBatchSampler:
    """Endless batch sampler: the index lists of micro-batches ``start, start+1, ...`` of one process."""

    def __init__(self, start_micro: int, batch_size: int, rank: int, world_size: int):
        self.start, self.batch_size, self.rank, self.world_size = start_micro, batch_size, rank, world_size

    def __iter__(self):
        m = self.start
        while True:
            yield list(micro_batch_indices(m, self.batch_size, self.rank, self.world_size))
            m += 1


class IndexedSamples(torch.utils.data.Dataset):
    """Sample ``i`` of a source as a model-ready dict (``make_model_sample``), a pure function of ``(seed, i)``.

    Endless ``synth``: record ``i`` of the generator of ``seed``. A finite source
    (``synth:N``, ``bench``, shards, the dataset readers — anything with ``len``
    and ``load(i)``): record ``perm_e[i mod n]``, with a fresh seeded
    permutation per epoch ``e = i // n``; a record the reader skips (``None``)
    or the model cannot write is replaced by the next one in that order.
    With ``data.edit_pairs`` = p > 0 (synthetic sources only) sample ``i`` is, with
    probability p, an edit pair instead: the model sees record ``i``'s scene and box
    and must write another word there (``SynthGenerator.sample_pair``).
    """

    def __init__(self, cfg, seed: int = 0, split: str = "train", source: str | None = None):
        from ..data.sources import SynthSource, open_source

        self.cfg, self.seed = cfg, int(seed)
        self.spec = source or cfg.data.source
        self.edit_pairs = float(cfg.data.edit_pairs)
        if not 0 <= self.edit_pairs <= 1:
            raise ConfigError(f"data.edit_pairs must be a fraction in [0, 1] (0 turns it off), got {self.edit_pairs}")
        if self.edit_pairs > 0 and str(self.spec).partition(":")[0] != "synth":
            raise ConfigError(f"data.edit_pairs needs the synthetic generator (data.source 'synth' or 'synth:N'), which "
                              f"can draw one scene with two words; {self.spec!r} has one word per scene")
        d = cfg.data
        for key in ("style_ref_drop", "style_ref_same", "pair_blank_source"):
            value = float(getattr(d, key))
            if not 0 <= value <= 1:
                raise ConfigError(f"data.{key} must be a fraction in [0, 1], got {value}")
        if not 0 <= int(d.pair_length_delta) <= cfg.max_len:
            raise ConfigError(f"data.pair_length_delta must be in [0, max_len={cfg.max_len}], got {d.pair_length_delta}")
        self.src = open_source(self.spec, cfg, split=split, seed=self.seed)
        self.endless = isinstance(self.src, SynthSource) and not self.src.finite
        if not self.endless:
            if not (hasattr(self.src, "__len__") and (hasattr(self.src, "load") or isinstance(self.src, SynthSource))):
                raise DreamTextError(f"data source {self.spec!r} has no random access; the trainer needs it to "
                                     "resume exactly (write the data to shards with `dreamtext data` first)")
            if len(self.src) == 0:
                raise DreamTextError(f"data source {self.spec!r} holds no records")
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return 2**62

    def _load(self, i: int, pair: bool = False):
        from ..data.sources import SynthSource

        if pair:  # (source, target): only the synthetic generator gets here (__init__)
            d = self.cfg.data
            blank = d.pair_blank_source > 0 and np.random.default_rng([self.seed, i, 0xB1A4]).random() < d.pair_blank_source
            return self.src.generator.sample_pair(i, length_delta=int(d.pair_length_delta), blank_source=blank)
        return self.src.generator.sample(i) if isinstance(self.src, SynthSource) else self.src.load(i)

    def record(self, index: int, pair: bool = False):
        """The ``TextRecord`` behind sample ``index``; with ``pair``, the edit pair (source, target) of its scene."""
        from ..data.indexed import text_problem

        if self.endless:
            return self._load(int(index), pair)
        n = len(self.src)
        epoch, pos = divmod(int(index), n)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch, 0xE90C]).permutation(n))
        order = self._perm[1]
        for k in range(n):
            rec = self._load(int(order[(pos + k) % n]), pair)
            if rec is not None and text_problem((rec[-1] if pair else rec).text, self.cfg.max_len) is None:
                return rec
        raise DreamTextError(f"data source {self.spec!r} holds no record this model can learn")

    def is_pair(self, index: int) -> bool:
        """Whether sample ``index`` is an edit pair (``data.edit_pairs``): its own draw, so that the other
        samples stay exactly what they are without pairs."""
        return self.edit_pairs > 0 and np.random.default_rng([self.seed, int(index), 0xED1A]).random() < self.edit_pairs

    def __getitem__(self, index: int) -> dict:
        from ..data.transforms import make_edit_sample, make_model_sample

        rng = np.random.default_rng([self.seed, int(index), 0x7A5F])
        # The style reference's draw (DESIGN §13): its own stream, so samples without style_ref are unchanged.
        u = np.random.default_rng([self.seed, int(index), 0x57E1]).random()
        if self.is_pair(index):
            sample = make_edit_sample(*self.record(index, pair=True), self.cfg, rng=rng,
                                      reference=u >= self.cfg.data.style_ref_drop)
        else:
            sample = make_model_sample(self.record(index), self.cfg, rng=rng, reference=u < self.cfg.data.style_ref_same)
        return {k: (torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v) for k, v in sample.items()}


def training_data_worker(worker_id: int) -> None:
    """``worker_init_fn`` of the training DataLoaders: OpenCV without a thread pool, SIGTERM and SIGINT ignored.

    ``kill -- -PGID``, a job scheduler ending a job, or Ctrl-C signal the whole process group, the data workers
    included. A worker killed by SIGTERM makes the main process raise "DataLoader worker ... is killed" from
    inside the current step, before the trainer's stop request can write its checkpoint: the steps since the
    last periodic checkpoint were lost (reproduced with ``pkill -f train-verifier``). Ignoring the signal here
    leaves the decision to the main process, which checkpoints and shuts its workers down; a worker still
    exits within seconds of its parent dying (PyTorch's worker watchdog), SIGKILL included.
    """
    import signal

    from ..data.transforms import opencv_in_forked_worker

    opencv_in_forked_worker(worker_id)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def step_batches(cfg, rank: int, world_size: int, seed: int, start_micro: int = 0, source: str | None = None):
    """Endless iterator of this process's micro-batches from ``start_micro`` on (dicts of stacked tensors)."""
    ds = IndexedSamples(cfg, seed=seed, source=source)
    sampler = _MicroBatchSampler(start_micro, cfg.train.batch_size, rank, world_size)
    workers = int(cfg.data.num_workers)
    return iter(torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=workers,
                                            persistent_workers=False, prefetch_factor=2 if workers else None,
                                            worker_init_fn=training_data_worker if workers else None))
