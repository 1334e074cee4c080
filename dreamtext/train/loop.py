"""The one training-loop skeleton every trainer here runs (the diffusion model, the word verifier, the encoder).

``run_steps`` owns what they all need and used to write three times: the progress bar, the metrics window
averaged every ``log_every`` steps, periodic work (checkpoints, sample grids, probes), and how a run ends —
SIGTERM or a first Ctrl-C stops it after the current step and checkpoints (``StopRequest``), a second Ctrl-C
stops at once, a non-finite loss stops it without checkpointing (the last good checkpoint stays). What a step
does is the caller's ``step_fn``.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .utils import NonFiniteLossError


class StopRequest:
    """SIGTERM, or a first Ctrl-C, asks the loop to stop after the current step (and checkpoint)."""

    def __init__(self):
        self.reason: str | None = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig, name in ((signal.SIGTERM, "terminated"), (signal.SIGINT, "interrupted")):
                self._old[sig] = signal.signal(sig, self._handler(name))
        return self

    def _handler(self, name):
        def handle(signum, frame):
            if self.reason is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: stop now
            self.reason = name

        return handle

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def mean_records(records: list[dict]) -> dict:
    """Per key, the NaN-aware mean over ``records`` (NaN where every value is NaN)."""
    out = {}
    for k in records[0]:
        vals = [r[k] for r in records if k in r and not math.isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


@dataclass
class LoopResult:
    step: int
    stopped: str  # "finished" | "interrupted" | "terminated"
    last: dict = field(default_factory=dict)  # the last logged window's means
    seconds: float = 0.0


def run_steps(step: int, max_steps: int, step_fn: Callable[[int], dict], *,
              log_every: int = 0, on_log: Callable[[int, dict], None] | None = None,
              periodic: tuple[tuple[int, Callable[[int], None]], ...] = (),
              save: Callable[[int], None] | None = None, ckpt_every: int = 0,
              progress: bool = False, desc: str = "train", postfix: Callable[[dict], dict] | None = None,
              samples_per_step: int = 0, agree: Callable[[str | None], str | None] | None = None,
              stoppable: bool = True) -> LoopResult:
    """Run ``step_fn(step) -> {name: float}`` from ``step`` until ``max_steps``; the step counter is ``step + 1``
    after each call.

    Every ``log_every`` steps (and the last) ``on_log(step, means of the window)`` (with ``samples_per_s`` when
    ``samples_per_step``); every ``ckpt_every`` steps ``save(step)``, then each ``(period, fn)`` of ``periodic``.
    ``agree(reason) -> reason`` lets several processes stop after the same step (DDP). A stop request or the end
    saves once more if the last step is not saved yet; a ``NonFiniteLossError`` propagates without saving.
    ``stoppable=False``: signals keep their usual effect (a run that writes nothing until its end).
    """
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, initial=step, desc=desc, unit="step", dynamic_ncols=True)
    result = LoopResult(step=step, stopped="finished")
    last_saved = step  # a resumed run's starting step is already on disk
    window: list[dict] = []
    t0 = tick = time.perf_counter()
    clean_exit = True
    stop_ctx = StopRequest() if stoppable else None
    try:
        if stop_ctx is not None:
            stop_ctx.__enter__()
        while step < max_steps:
            clean_exit = False  # a KeyboardInterrupt from here on may land mid-update
            values = step_fn(step)
            step += 1
            clean_exit = True
            result.step = step
            window.append(values)
            if log_every and (step % log_every == 0 or step == max_steps):
                now = time.perf_counter()
                result.last = mean_records(window)
                if samples_per_step:
                    result.last["samples_per_s"] = samples_per_step * len(window) / max(now - tick, 1e-9)
                tick, window = now, []
                if on_log is not None:
                    on_log(step, result.last)
            if bar is not None:
                bar.update(1)
                if postfix is not None:
                    bar.set_postfix(postfix(values))
            if save is not None and ckpt_every and step % ckpt_every == 0:
                save(step)
                last_saved = step
            for period, fn in periodic:
                if period and step % period == 0:
                    fn(step)
            reason = stop_ctx.reason if stop_ctx is not None else None
            if agree is not None:
                reason = agree(reason)
            if reason is not None:
                result.stopped = reason
                break
    except KeyboardInterrupt:
        if not stoppable:  # a run that writes only at its end has nothing to keep: the interrupt goes on up
            clean_exit = False
            raise
        result.stopped = "interrupted"
    except NonFiniteLossError:
        clean_exit = False  # never checkpoint after a non-finite loss: the last good checkpoint stays
        raise
    finally:
        if stop_ctx is not None:
            stop_ctx.__exit__(None, None, None)
        if bar is not None:
            bar.close()
        if save is not None and clean_exit and step != last_saved and step > 0:
            save(step)
        result.seconds = time.perf_counter() - t0
    return result
