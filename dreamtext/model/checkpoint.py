"""Checkpoints: safetensors weights + JSON config and state, written atomically; loading a model back.

A checkpoint directory holds

    config.json          the full DreamTextConfig (the model is rebuilt from it alone)
    state.json           step, RNG state, optimiser metadata, ... (whatever the caller passes)
    <name>.safetensors   one file per tensor dict: model, ema, optimizer, encoder, ...

It is written into a temporary directory beside the target and renamed into
place (``io_utils.atomic_dir``), so a crash leaves the old checkpoint or the
new one, never half of one. Nothing is ever unpickled: weights are safetensors,
everything else JSON.

``load_model(path)`` accepts a checkpoint directory, a pipeline directory
(``DreamTextPipeline.save_pretrained``: the same layout) or a run directory (its
latest checkpoint, under ``checkpoints/`` or directly inside). A missing, corrupt
or mismatching file raises ``CheckpointError`` naming the file and the problem.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ..config import DreamTextConfig
from ..errors import CheckpointError, DreamTextError
from ..io_utils import atomic_dir, read_json, read_tensors

_STEP = re.compile(r"(\d+)$")
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "model"  # the model inside the package


EXPORT_KINDS = ("pipeline", "verifier", "refiner")  # what an export's state.json may say it is


def export_mode(directory: str | Path, *, kind: str, force: bool = False) -> bool:
    """Check that an export of ``kind`` (one of ``EXPORT_KINDS``) may be written to ``directory``.

    Returns ``merge``: False where the folder is absent, empty or an earlier export of the same kind
    holding only files this program writes (it is replaced whole, atomically); True where ``force``
    lets the export's files be written into a folder that holds other files (those are left alone).
    Raises CheckpointError for a file in the way, a training checkpoint (its optimiser and EMA state
    would be lost), a folder inside a run's ``checkpoints/``, or a non-empty foreign folder without
    ``force``: a user's folder is never replaced.
    """
    directory = Path(directory)
    if not directory.exists():
        if directory.parent.name == "checkpoints":
            raise CheckpointError(f"refusing to export into {str(directory)!r}: it is inside a run's checkpoints "
                                  "folder, where resume would take it for a training checkpoint")
        return False
    if not directory.is_dir():
        raise CheckpointError(f"export target {str(directory)!r} is a file, not a folder")
    entries = sorted(p.name for p in directory.iterdir())
    if not entries:
        return False
    state_kind = None
    if (directory / "state.json").is_file():
        try:
            state_kind = json.loads((directory / "state.json").read_text()).get("kind")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            state_kind = "unreadable"
    training = (directory.parent.name == "checkpoints" or "optimizer.safetensors" in entries
                or (state_kind is not None and state_kind not in EXPORT_KINDS))
    if training:
        raise CheckpointError(f"refusing to export into {str(directory)!r}: it is a training checkpoint "
                              "(a run's resumable state); export to a new folder")
    if state_kind == kind and set(entries) <= {"config.json", "state.json", "model.safetensors"}:
        return False
    if not force:
        raise CheckpointError(f"export target {str(directory)!r} is a non-empty folder that is not a {kind} "
                              f"export ({len(entries)} entries, e.g. {entries[0]!r}); choose a new folder, or pass "
                              "--force to write config.json, state.json and model.safetensors into it "
                              "(other files are left alone)")
    return True


def save_checkpoint(directory: str | Path, cfg: DreamTextConfig, tensors: dict[str, dict[str, torch.Tensor]],
                    state: dict, *, merge: bool = False) -> Path:
    """Write ``directory`` atomically: ``config.json``, ``state.json`` and ``<name>.safetensors`` per entry.

    ``merge``: move the files into an existing folder one by one instead of replacing it whole
    (see ``export_mode``).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    try:
        state_text = json.dumps(state, indent=1, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint state for {str(directory)!r} is not JSON-serialisable: {e}") from None
    from safetensors import SafetensorError

    try:
        with atomic_dir(directory, merge=merge) as tmp:
            (tmp / "config.json").write_text(cfg.to_json())
            (tmp / "state.json").write_text(state_text)
            for name, tdict in tensors.items():
                # safetensors refuses shared storage and non-contiguous tensors: give it plain copies.
                flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tdict.items()}
                save_file(flat, str(tmp / f"{name}.safetensors"), metadata={"format": "pt"})
    except (OSError, SafetensorError) as e:  # the temp folder is gone, an older checkpoint is untouched
        detail = " ".join(str(e).split())
        full = any(s in detail for s in ("No space left", "File too large", "Disk quota")) or \
            getattr(e, "errno", None) in (28, 27, 122)  # ENOSPC, EFBIG, EDQUOT
        raise CheckpointError(f"{'disk full' if full else 'cannot write'} while writing checkpoint "
                              f"{str(directory)!r} ({detail[:200]})") from None
    return directory


def read_config(ckpt_dir: str | Path) -> DreamTextConfig:
    path = Path(ckpt_dir) / "config.json"
    data = read_json(path)
    try:
        return DreamTextConfig.from_dict(data)
    except DreamTextError as e:
        raise CheckpointError(f"{str(path)!r} does not match this version's config: {e}") from None


def is_checkpoint_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / "config.json").is_file() and (p / "model.safetensors").is_file()


def checkpoint_step(path: Path) -> int:
    state = path / "state.json"
    if state.is_file():
        try:
            step = json.loads(state.read_text()).get("step")
            if isinstance(step, int):
                return step
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            pass
    m = _STEP.search(path.name)
    return int(m.group(1)) if m else -1


def complete_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every complete checkpoint directly inside ``root``, oldest first.

    The one definition of "complete" (resume, export, prune): config.json and model.safetensors present;
    hidden folders (a write in progress, or one a kill interrupted: ``.step_N.*.tmp``) never count.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(checkpoint_step(p), p.name, p) for p in root.iterdir()
             if p.is_dir() and not p.name.startswith(".") and is_checkpoint_dir(p)]
    return [(step, p) for step, _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The complete checkpoint with the highest step under ``run_dir/checkpoints/`` or ``run_dir/`` (None if none)."""
    run_dir = Path(run_dir)
    found = [(step, p.name, p) for root in (run_dir / "checkpoints", run_dir) for step, p in complete_checkpoints(root)]
    return max(found)[2] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint or pipeline directory itself, or the latest checkpoint of a run directory."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if is_checkpoint_dir(path):
        return path
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is not None:
            return latest
        if (path / "config.json").is_file():
            raise CheckpointError(f"checkpoint {str(path)!r} has config.json but no model.safetensors")
    raise CheckpointError(f"{str(path)!r} is not a checkpoint, pipeline or run directory "
                          "(expected config.json + model.safetensors, or checkpoints inside)")


def load_state_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor], file: str | Path,
                    partial: bool = False) -> None:
    """Copy ``tensors`` into ``module``; names and shapes must match (``partial``: a subset may be given)."""
    own = module.state_dict()
    unknown = sorted(set(tensors) - set(own))
    missing = [] if partial else sorted(set(own) - set(tensors))
    wrong = sorted(k for k in set(tensors) & set(own) if tuple(tensors[k].shape) != tuple(own[k].shape))
    problems = []
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} weight(s) of the wrong shape, e.g. {k!r} is {tuple(tensors[k].shape)} "
                        f"but the config builds {tuple(own[k].shape)}")
    if missing:
        problems.append(f"{len(missing)} weight(s) missing, e.g. {missing[0]!r}")
    if unknown:
        problems.append(f"{len(unknown)} unexpected weight(s), e.g. {unknown[0]!r}")
    if problems:
        raise CheckpointError(f"{str(file)!r} does not match its config.json: " + "; ".join(problems))
    with torch.no_grad():
        for k, v in tensors.items():
            own[k].copy_(v)


def load_model(path: str | Path, use_ema: bool = True):
    """(DreamTextModel, cfg) from a run, checkpoint or pipeline directory, in eval mode on the CPU.

    ``use_ema``: overlay ``ema.safetensors`` (which may hold a subset, e.g. the trainable weights) when present.
    """
    from .network import DreamTextModel

    ckpt = resolve_checkpoint(path)
    cfg = read_config(ckpt)
    try:
        model = DreamTextModel(cfg, load_base=False)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{str(ckpt / 'config.json')!r} does not describe a buildable model: {e}") from None
    load_weights_into(model, ckpt, use_ema)
    return model.eval(), cfg


def load_weights_into(model: torch.nn.Module, ckpt: Path, use_ema: bool = True, adapt=None) -> None:
    """``model`` ← checkpoint directory ``ckpt``'s weights, with ``ema.safetensors`` overlaid when ``use_ema``.

    ``adapt``: a function applied to each tensor dict before loading (a fine-tune's start that widens the
    network, e.g. ``model.widen_for_style_ref``).
    """
    adapt = adapt or (lambda tensors: tensors)
    load_state_into(model, adapt(read_tensors(ckpt / "model.safetensors")), ckpt / "model.safetensors")
    ema = ckpt / "ema.safetensors"
    if use_ema and ema.is_file():
        load_state_into(model, adapt(read_tensors(ema)), ema, partial=True)


def weights_sha256(model) -> str:
    """SHA-256 over the loaded weights (names, shapes, dtypes and bytes, in name order).

    Identifies exactly the parameters that produced the numbers, whichever
    directory layout (run, checkpoint, pipeline) they were loaded from.
    """
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_config(path: str | Path | None):
    """The config of the model ``path`` names (None: the shipped one), read without loading its weights."""
    from ..model.checkpoint import read_config, resolve_checkpoint

    return read_config(resolve_checkpoint(model_path(path)))


def model_path(path: str | Path | None) -> Path:
    """The model a user names: ``None`` is the one shipped in ``dreamtext/assets/model``; a path must exist."""
    if path is None:
        if not (SHIPPED_MODEL_DIR / "config.json").is_file():
            raise CheckpointError(
                f"no shipped model is present in {SHIPPED_MODEL_DIR}; pass a trained checkpoint with "
                "--ckpt PATH (a run, checkpoint or pipeline directory)")
        return SHIPPED_MODEL_DIR
    if not Path(path).exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return Path(path)


def kind_state(ckpt: Path, kind: str, what: str, command: str) -> dict:
    """The ``state.json`` of checkpoint directory ``ckpt``; :class:`CheckpointError` unless it says ``kind``
    (``what``: "a word verifier", ``command``: the one that trains such a model, for the message)."""
    state = read_json(ckpt / "state.json") if (ckpt / "state.json").is_file() else {}
    if state.get("kind") != kind:
        raise CheckpointError(f"{str(ckpt)!r} is not {what} (its state.json says kind {state.get('kind')!r}); "
                              f"train one with `dreamtext {command}`")
    return state


def load_small_model(path: str | Path | None, shipped: Path, build, state_of, missing: str):
    """(model in eval mode on the CPU, its DreamTextConfig) of a helper network (verifier, refiner) from a run or
    checkpoint directory; None: the one shipped in ``shipped`` (``missing``: the message when it is absent).
    ``build(cfg) -> module``; ``state_of(ckpt)`` checks the checkpoint's kind."""
    if path is None:
        path = shipped
        if not (path / "config.json").is_file():
            raise CheckpointError(missing)
    ckpt = resolve_checkpoint(path)
    state_of(ckpt)
    cfg = read_config(ckpt)
    model = build(cfg)
    load_state_into(model, read_tensors(ckpt / "model.safetensors"), ckpt / "model.safetensors")
    return model.eval(), cfg
