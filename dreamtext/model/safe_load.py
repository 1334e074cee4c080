"""Reading weights from files made by other code (the released DreamText / UDiffText checkpoints), running none of it.

A PyTorch Lightning ``.ckpt`` is a pickle, and unpickling may call any function the file names. It is read
with ``torch.load(weights_only=True)``: PyTorch's restricted unpickler, which rebuilds tensors, storages and
plain containers (dict, OrderedDict, list, tuple, str, numbers) and refuses every other global. Nothing is
added to that allowlist (``EXTRA_SAFE_GLOBALS`` is empty): the ``state_dict`` needs only tensors in an
OrderedDict, and Lightning's own entries (epoch, global_step, loops, callbacks' and optimisers' states) are
plain values too. A file that asks for anything else — an OmegaConf config in ``hyper_parameters``, a class,
``os.system`` — is refused before it is unpickled, by a :class:`CheckpointError` naming the global (PyTorch's
``get_unsafe_globals_in_checkpoint`` reads the pickle's opcodes without running them); a legacy (pre-zip)
file is refused by the restricted unpickler itself, with the same message.

``.safetensors`` files hold only tensors and a JSON header: nothing to refuse.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch

from ..errors import CheckpointError

# Globals allowed beyond PyTorch's weights_only defaults. None are needed by a Lightning checkpoint's
# state_dict; extend only with classes whose unpickling runs no code of the file's choosing.
EXTRA_SAFE_GLOBALS: tuple = ()
_GLOBAL_IN_ERROR = re.compile(r"GLOBAL ([\w.]+)|Unsupported global: (?:GLOBAL )?([\w.]+)|global '?([\w.]+)")


def _refused(path: Path, names: list[str]) -> CheckpointError:
    more = f" (and {len(names) - 1} more: {', '.join(names[1:4])})" if len(names) > 1 else ""
    return CheckpointError(f"{str(path)!r} asks the unpickler for {names[0]}{more}: refused, nothing of it was "
                           "run (only tensors and plain containers are read from a .ckpt; re-save its "
                           "'state_dict' alone, where you trust the file, to convert it)")


def load_pickled_state(path: str | Path) -> dict:
    """The object a ``torch.save`` file holds, unpickled with the restricted (weights-only) unpickler.

    Raises :class:`CheckpointError` for a missing or corrupt file and for one that needs any global outside
    PyTorch's safe set (named in the message; the file is not unpickled at all).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist")
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        try:
            with torch.serialization.safe_globals(list(EXTRA_SAFE_GLOBALS)):
                unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except (RuntimeError, ValueError, KeyError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
            raise CheckpointError(f"{str(path)!r} is not a readable PyTorch checkpoint: "
                                  f"{' '.join(str(e).split())[:200]}") from None
        if unsafe:
            raise _refused(path, sorted(unsafe))
    try:
        with torch.serialization.safe_globals(list(EXTRA_SAFE_GLOBALS)), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # torch's note on protocol ≥ 3
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as e:
        match = _GLOBAL_IN_ERROR.search(str(e))
        names = [next(g for g in match.groups() if g)] if match else _foreign_globals(path)
        if names:
            raise _refused(path, names) from None
        reason = str(e).split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
        raise CheckpointError(f"{str(path)!r} cannot be read by the restricted unpickler "
                              f"({' '.join(reason.split())[:160]}); it is not a torch.save checkpoint") from None
    except (MemoryError, RecursionError) as e:
        raise CheckpointError(f"{str(path)!r} is corrupt or not a PyTorch checkpoint "
                              f"({type(e).__name__} while reading it)") from None
    except Exception as e:  # noqa: BLE001 - junk bytes drive the unpickler into any error (IndexError, struct.error, ...)
        raise CheckpointError(f"{str(path)!r} is corrupt or not a PyTorch checkpoint: {type(e).__name__}: "
                              f"{' '.join(str(e).split())[:200]}") from None


def _foreign_globals(path: Path) -> list[str]:
    """The globals a (non-zip) pickle file names outside torch and ``collections``, read from its opcodes
    (``pickletools.genops`` disassembles; nothing is executed). A legacy ``torch.save`` file is several pickles
    in a row: each is read."""
    import io
    import pickletools

    found, data = [], io.BytesIO(path.read_bytes())
    strings: list[str] = []
    while True:
        try:
            ops = list(pickletools.genops(data))
        except (ValueError, EOFError, pickle.UnpicklingError):
            break
        if not ops:
            break
        for op, arg, _ in ops:
            if op.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
        if data.tell() >= len(data.getbuffer()):
            break
    own = ("torch.", "collections.OrderedDict")
    return sorted({g for g in found if not g.startswith(own)})


def state_dict_of(obj, path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint object (or the object itself when it is a bare state dict)."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and torch.is_tensor(v)
                                                       for k, v in obj.items()):
        kind = type(obj).__name__
        keys = ", ".join(repr(k) for k in list(obj)[:5]) if isinstance(obj, dict) else ""
        raise CheckpointError(f"{str(path)!r} holds no state dict (a {kind}{' with ' + keys if keys else ''}); "
                              "expected a Lightning checkpoint with 'state_dict' or a name → tensor mapping")
    return obj


def load_lightning_state(path: str | Path) -> dict[str, torch.Tensor]:
    """name → tensor of a Lightning ``.ckpt`` (its ``state_dict``) or a bare state-dict pickle, read safely."""
    return state_dict_of(load_pickled_state(path), path)


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """name → tensor of a ``.safetensors`` file; CheckpointError naming a missing or corrupt file."""
    from ..io_utils import read_tensors

    return read_tensors(path)
