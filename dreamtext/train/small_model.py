"""The run plumbing the small helper networks share (the word verifier, the detail refiner): checkpoints of the
model and its AdamW state written atomically, resuming from the newest, and exporting the weights alone.

Each kind is named in its ``state.json`` (``kind``, ``format``), so a verifier is never loaded as a refiner.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointError
from ..model.checkpoint import latest_checkpoint, load_state_into, read_tensors, save_checkpoint
from .utils import flatten_optimizer_state, prune_checkpoints, unflatten_optimizer_state


def save_run_checkpoint(out_dir: Path, cfg, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, *,
                        kind: str, fmt: str, keep: int = 2) -> Path:
    """``out_dir/checkpoints/step_<step>``: model, optimiser state and step, atomically; the newest ``keep`` kept."""
    opt_tensors, opt_meta = flatten_optimizer_state(opt.state_dict())
    path = save_checkpoint(out_dir / "checkpoints" / f"step_{step}", cfg,
                           {"model": model.state_dict(), "optimizer": opt_tensors},
                           {"kind": kind, "format": fmt, "step": step, "optimizer": opt_meta})
    prune_checkpoints(out_dir / "checkpoints", keep)
    return path


def resume_run(out_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, resume: bool, state_of,
               what: str) -> tuple[int, bool]:
    """(step to start from, whether a checkpoint was loaded): with ``resume`` the newest complete checkpoint's
    model and optimiser are loaded (``state_of(ckpt)`` checks its kind); a run directory that already holds
    checkpoints is refused without ``resume``, and with it when none is complete."""
    has_steps = out_dir.exists() and any((out_dir / "checkpoints").glob("step_*"))
    ckpt = latest_checkpoint(out_dir) if resume else None
    if resume and ckpt is None and has_steps:
        raise CheckpointError(f"{str(out_dir)!r} has no complete {what} checkpoint to resume from")
    if ckpt is None:
        if has_steps:
            raise CheckpointError(f"{str(out_dir)!r} already holds a {what} run: pass --resume or another --out")
        return 0, False
    state = state_of(ckpt)
    load_state_into(model, read_tensors(ckpt / "model.safetensors"), ckpt / "model.safetensors")
    opt.load_state_dict(unflatten_optimizer_state(read_tensors(ckpt / "optimizer.safetensors"), state["optimizer"]))
    return int(state["step"]), True


def export_weights(run_or_ckpt: str | Path, dest: str | Path, *, kind: str, fmt: str, state_of,
                   force: bool = False) -> Path:
    """Copy a run's (newest) or checkpoint's weights and config, without the optimiser, into ``dest``
    (e.g. ``dreamtext/assets/verifier``); ``dest`` is checked as ``checkpoint.export_mode`` says (a user's
    folder is never replaced)."""
    from ..model.checkpoint import export_mode, read_config, resolve_checkpoint

    merge = export_mode(dest, kind=kind, force=force)
    ckpt = resolve_checkpoint(run_or_ckpt)
    state = state_of(ckpt)
    tensors = read_tensors(ckpt / "model.safetensors")
    return save_checkpoint(dest, read_config(ckpt), {"model": tensors},
                           {"kind": kind, "format": fmt, "step": state["step"], "source": str(ckpt)}, merge=merge)
