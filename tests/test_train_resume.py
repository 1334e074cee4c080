"""A run killed with SIGKILL mid-training and resumed ends with the weights of an uninterrupted run.

Tolerance: none — the resumed run must be bit-identical (model, EMA and
optimiser tensors, and every logged loss), because data, noise, timesteps and
condition dropout are functions of (seed, step, rank) and the checkpoint holds
everything else. Bit-identity holds between fresh processes on one machine
with one thread count, so all three runs are fresh processes with one torch
thread. (A process that has already trained other models can round a
reduction differently in the last bit — seen once in a pytest process — and
AdamW turns such a 1e-7 gradient difference into an lr-sized step on weights
whose gradient is near zero; across machines the same applies.)
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from dreamtext.model.checkpoint import latest_checkpoint
from dreamtext.train.utils import read_metrics

ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS = 6
ARGS = [f"train.max_steps={MAX_STEPS}", "train.ckpt_every=2", "train.batch_size=2", "train.log_every=1",
        "train.sample_every=0", "train.keep_ckpts=2", "loss.k_gt=3"]  # k_gt=3: the switch to predicted masks too


def _step(ckpt) -> int:
    return int(ckpt.name.split("_")[1]) if ckpt is not None else -1


ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _train_cmd(run_dir, *extra):
    return [sys.executable, "-m", "dreamtext.cli", "train", "--preset", "test", f"train.out_dir={run_dir}", *ARGS,
            "--no-progress", *extra]


def _train(run_dir, *extra) -> dict:
    proc = subprocess.run(_train_cmd(run_dir, *extra), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):])  # the summary the command prints


def test_sigkill_then_resume_reaches_the_uninterrupted_weights(tmp_path):
    straight = _train(tmp_path / "a")
    assert straight["step"] == MAX_STEPS

    run_b = tmp_path / "b"
    proc = subprocess.Popen(_train_cmd(run_b), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _step(latest_checkpoint(run_b) if run_b.exists() else None) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the run wrote no checkpoint in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    killed_at = _step(latest_checkpoint(run_b))
    assert 2 <= killed_at < MAX_STEPS, "the run finished before it could be killed"

    resumed = _train(run_b, "--resume")
    assert resumed["resumed_from"].endswith(f"step_{killed_at:08d}") and resumed["step"] == MAX_STEPS
    assert resumed["weights_digest"] == straight["weights_digest"]
    a, b = latest_checkpoint(tmp_path / "a"), latest_checkpoint(run_b)
    for name in ("model", "ema", "optimizer"):
        ta, tb = load_file(str(a / f"{name}.safetensors")), load_file(str(b / f"{name}.safetensors"))
        assert ta.keys() == tb.keys()
        for k in ta:
            torch.testing.assert_close(ta[k], tb[k], rtol=0, atol=0, msg=f"{name}:{k}")
    # the metrics file reads as one run: every step once, with the uninterrupted run's losses
    ma, mb = read_metrics(tmp_path / "a"), read_metrics(run_b)
    assert [r["step"] for r in mb] == list(range(1, MAX_STEPS + 1))
    for ra, rb in zip(ma, mb):
        assert ra["loss/total"] == rb["loss/total"] and ra["loss/attn"] == rb["loss/attn"]


def test_sigterm_to_the_process_group_checkpoints_with_data_workers(tmp_path):
    """`kill -- -PGID` (a scheduler, the terminal) reaches the data workers too: the run still checkpoints.

    Before the workers ignored SIGTERM, the dead worker made the main process fail inside the step with
    "DataLoader worker ... is killed by signal: Terminated" and no checkpoint was written.
    """
    run = tmp_path / "run"
    cmd = _train_cmd(run)
    cmd[cmd.index(f"train.max_steps={MAX_STEPS}")] = "train.max_steps=100000"
    cmd[cmd.index("train.ckpt_every=2")] = "train.ckpt_every=0"  # only the stop request writes one
    cmd.insert(cmd.index("--no-progress"), "data.num_workers=1")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "metrics.jsonl").is_file() or len(read_metrics(run)) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the run logged no step in time"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGTERM)
        err = proc.communicate(timeout=120)[1].decode()
        assert proc.returncode == 130, err[-2000:]  # stopped on request, not failed
        last = read_metrics(run)[-1]["step"]
        assert _step(latest_checkpoint(run)) == last >= 2
        deadline = time.monotonic() + 30  # and the worker follows its parent out
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("a data worker outlived the stopped run")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
