"""Two training processes on CPU (torchrun, DDP over gloo): different data, identical weights after each step."""

import json
import socket
import subprocess
import sys
from pathlib import Path

from dreamtext.config import load_config
from dreamtext.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["train.max_steps=1", "train.batch_size=2", "train.ckpt_every=0", "train.sample_every=0", "train.log_every=1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun_two(tmp_path, name: str, *overrides: str) -> tuple[dict, dict]:
    """Train ARGS + overrides in two gloo processes into tmp_path/name; the two ranks' summaries."""
    prefix = tmp_path / f"{name}-summary"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(ROOT / "tests" / "_train_dist_worker.py"), str(prefix),
           f"train.out_dir={tmp_path / name}", *ARGS, *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tuple(json.loads((tmp_path / f"{name}-summary.rank{r}.json").read_text()) for r in (0, 1))


def test_two_gloo_processes_see_different_data_and_end_with_identical_weights(tmp_path):
    r0, r1 = _torchrun_two(tmp_path, "ddp")
    assert r0["world_size"] == r1["world_size"] == 2 and r0["step"] == r1["step"] == 1
    assert r0["is_main"] and not r1["is_main"]
    # the two processes trained on disjoint samples...
    assert set(r0["first_batch_texts"]).isdisjoint(r1["first_batch_texts"])
    # ...and, after the all-reduce, hold bit-identical weights
    assert r0["weights_digest"] == r1["weights_digest"]
    # one process alone on rank 0's batch ends elsewhere: the update did combine both processes' gradients
    alone = train(load_config("test", overrides=[f"train.out_dir={tmp_path / 'alone'}", *ARGS]), progress=False)
    assert alone["first_batch_texts"] == r0["first_batch_texts"]
    assert alone["weights_digest"] != r0["weights_digest"]
    # only the main process wrote the run's files
    assert (tmp_path / "ddp" / "checkpoints" / "step_00000001" / "model.safetensors").is_file()
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 1


def test_a_compiled_unet_under_ddp_keeps_the_processes_in_step(tmp_path):
    # train.compile inside DDP: the gradient all-reduce still fires for the traced UNet's weights.
    r0, r1 = _torchrun_two(tmp_path, "ddp-compiled", "train.max_steps=2", "train.compile=true",
                           "train.compile_backend=aot_eager")
    assert r0["step"] == r1["step"] == 2
    assert r0["weights_digest"] == r1["weights_digest"]
    assert set(r0["first_batch_texts"]).isdisjoint(r1["first_batch_texts"])


def test_ddp_needs_no_unused_parameter_search_for_the_shipped_recipe(tmp_path):
    """train.ddp_find_unused is off: DDP raises at the next step if any trainable parameter got no gradient, so
    three steps of the shipped model's recipe (glyph prior, style reference on edit pairs, the ce attention loss,
    balanced supervision switching to predicted masks) under two processes prove every one gets its gradient."""
    r0, r1 = _torchrun_two(tmp_path, "recipe", "train.max_steps=3", "glyph_prior=true", "style_ref=true",
                           "data.edit_pairs=0.5", "data.pair_blank_source=0.3", "loss.attn_form=ce",
                           "loss.supervision=balanced", "loss.k_gt=1")
    assert r0["step"] == r1["step"] == 3 and r0["weights_digest"] == r1["weights_digest"]
