"""train/loop.run_steps: the skeleton the diffusion trainer, the verifier and the encoder share."""

import os
import signal

import pytest

from dreamtext.train.loop import run_steps
from dreamtext.train.utils import NonFiniteLossError


def test_logs_window_means_saves_and_runs_periodic_work_in_order():
    events, logged = [], []

    def step_fn(step):
        events.append(("step", step))
        return {"loss": float(step), "miou": float("nan") if step == 1 else 1.0}

    run = run_steps(0, 5, step_fn, log_every=2, on_log=lambda s, m: logged.append((s, m)),
                    save=lambda s: events.append(("save", s)), ckpt_every=2,
                    periodic=((4, lambda s: events.append(("grid", s))),))
    assert run.step == 5 and run.stopped == "finished"
    # windows of 2 steps (the last shorter), NaN-aware means: step 1's NaN mIoU is left out
    assert [(s, m["loss"]) for s, m in logged] == [(2, 0.5), (4, 2.5), (5, 4.0)]
    assert logged[0][1]["miou"] == 1.0
    assert [e for e in events if e[0] != "step"] == [("save", 2), ("save", 4), ("grid", 4), ("save", 5)]


def test_a_stop_request_ends_after_the_step_and_saves_it():
    saved = []

    def step_fn(step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return {"loss": 1.0}

    run = run_steps(0, 100, step_fn, save=saved.append, ckpt_every=50)
    assert (run.step, run.stopped, saved) == (3, "terminated", [3])


def test_a_non_finite_loss_propagates_without_saving_and_a_resumed_start_is_not_saved_again():
    saved = []

    def step_fn(step):
        if step == 12:
            raise NonFiniteLossError("loss is nan at step 13")
        return {"loss": 1.0}

    with pytest.raises(NonFiniteLossError):
        run_steps(10, 20, step_fn, save=saved.append, ckpt_every=100)
    assert saved == []
    run = run_steps(10, 10, lambda s: {"loss": 0.0}, save=saved.append, ckpt_every=1)
    assert run.step == 10 and saved == []  # nothing ran: the resumed step is already on disk
