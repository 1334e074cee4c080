"""What a training run sets up before its first step (dreamtext.train.trainer uses each): the precision and the
Accelerator, the fine-tuning start, torch.compile of the UNet, the check that a resume keeps the model, data and
loss settings, and the clean-up of a killed checkpoint write's temp folders.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from ..config import DreamTextConfig
from ..errors import CheckpointError, ConfigError

# Settings a resume may change (the model, data and loss settings must stay those of the checkpoint).
RESUMABLE_CHANGES = ("train.", "sample.", "pretrain.", "data.num_workers")


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast pays off: a GPU with bf16, or a CPU with native bf16 (AVX512-BF16/AMX) kernels."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def make_accelerator(cfg: DreamTextConfig):
    """The Accelerator for ``cfg``: DDP (``train.ddp_find_unused``: off, the model freezes what the objective does
    not use), bf16 autocast where the hardware has it."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    probe = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if probe.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.train.tf32
        torch.backends.cudnn.allow_tf32 = cfg.train.tf32
    precision = "bf16" if cfg.train.bf16 and bf16_supported(probe) else "no"
    # Several processes without GPUs (torchrun on CPU): accelerate needs cpu=True to pick DDP over gloo.
    multi_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    try:  # accelerate keeps its settings in a process-wide singleton: let a second run choose its own precision
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state()  # keeps the process group (PartialState)
    except (ImportError, AttributeError):
        pass
    return Accelerator(
        cpu=multi_cpu,
        gradient_accumulation_steps=cfg.train.grad_accum,
        mixed_precision=precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.train.ddp_find_unused)],
    )


def _check_resumable(saved: DreamTextConfig, cfg: DreamTextConfig, ckpt: Path) -> None:
    from ..config import _flatten

    a, b = _flatten(saved.to_dict()), _flatten(cfg.to_dict())
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and not k.startswith(RESUMABLE_CHANGES))
    if changed:
        shown = ", ".join(f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in changed[:4])
        raise CheckpointError(f"cannot resume from {str(ckpt)!r} with a different model/data/loss config ({shown}); "
                              "only train.*, sample.* and data.num_workers may change on resume")


def _init_weights(model, source: str) -> None:
    """Fine-tuning start: ``model`` ← the (EMA) weights of a run / checkpoint / pipeline dir or "shipped"."""
    from ..model.checkpoint import SHIPPED_MODEL_DIR
    from ..model.checkpoint import load_weights_into, resolve_checkpoint
    from ..model.network import widen_for_style_ref

    ckpt = resolve_checkpoint(SHIPPED_MODEL_DIR if source == "shipped" else source)
    try:
        # A start from a model without the style reference gains its input channels at zero (DESIGN §13).
        load_weights_into(model, ckpt, adapt=lambda tensors: widen_for_style_ref(tensors, model.cfg))
    except CheckpointError as e:
        detail = str(e).split(": ", 1)[-1]
        raise CheckpointError(f"cannot fine-tune from {source!r}: its weights do not fit the network this config "
                              f"builds ({detail}); use the model settings it was trained with") from None


def compile_unet(unet: torch.nn.Module, backend: str = "inductor") -> None:
    """``torch.compile`` the UNet in place (``nn.Module.compile``): its parameters keep their names, so
    checkpoints, the EMA and fine-tuning see the same module. Compilation happens at the first call.

    A backend that cannot compile here (no C++ compiler, no Triton) must cost the speed-up, not the run:
    dynamo's ``suppress_errors`` (process-wide) makes such a failure fall back to eager with a warning.
    """
    import torch._dynamo

    known = torch._dynamo.list_backends(exclude_tags=())
    if backend not in known:  # "" included
        raise ConfigError(f"train.compile_backend {backend!r} is not a torch.compile backend; known: {', '.join(known)}")
    torch._dynamo.config.suppress_errors = True
    unet.compile(backend=backend)


def loss_values(losses: dict) -> dict[str, float]:
    """The objective's outputs as Python floats (tensor means), copied off the device in one go."""
    keys = [k for k, v in losses.items() if torch.is_tensor(v)]
    floats = torch.stack([losses[k].detach().float().mean() for k in keys]).tolist() if keys else []
    out = dict(zip(keys, floats))
    out.update({k: float(v) for k, v in losses.items() if not torch.is_tensor(v)})
    return {k: out[k] for k in losses}


def remove_stale_temp_dirs(ckpt_root: Path) -> list[str]:
    """The hidden ``.step_N.*.tmp`` / ``.old`` folders a killed checkpoint write leaves in ``checkpoints/``
    (io_utils.atomic_dir), removed on resume; complete checkpoints are never touched. Returns the names."""
    removed = []
    if ckpt_root.is_dir():
        for p in sorted(ckpt_root.glob(".step_*")):
            if p.is_dir() and (p.name.endswith(".tmp") or p.name.endswith(".old")):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
    return removed
