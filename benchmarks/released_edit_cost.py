"""What one 512-px edit costs with the paper's model converted by ``dreamtext convert`` (docs/released-weights.md).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/released_edit_cost.py [--steps 50] [--scale 8] [--repeats 2]

No released weights are on this machine, so the edit is *measured* on a scaled-down model with the release's
structure (4 UNet levels, 2 ResNets each, attention at the first 3), ``--scale`` times narrower (UNet widths
320/scale…, as many heads as the release; ψ 12 layers of 2048/scale; SD's VAE narrowed alike), randomly
initialised (time does not depend on the weights), at the release's resolution: a 512×512 window, 64×64×4
latents, ``euler-edm`` with CFG 5 (one UNet call of batch 2 per step). It reports, for that model:

- seconds per edit (median of ``--repeats``; wall clock and the process's CPU seconds);
- the peak resident memory during the edit above the loaded model (Linux ``VmHWM`` after ``clear_refs``);

and for the full-size release (built on the meta device: no memory, no weights) beside the miniature:

- parameters of the UNet, ψ and the VAE, and their weights' size in float32 / float16;
- the floating-point operations of one UNet call at 64×64 latents, batch 2 (``torch.utils.flop_counter``),

from which it *estimates* the full-size edit: time = measured × (full UNet FLOPs / miniature's), on this
CPU; activation memory = measured × the width ratio (activations grow with the channels at a fixed size).
These two are estimates, not measurements: run the converted model on a GPU for the real numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dreamtext.edit.pipeline import DreamTextPipeline  # noqa: E402
from dreamtext.model.convert_released import build_config  # noqa: E402
from dreamtext.model.network import DreamTextModel  # noqa: E402


def release_config(scale: int, steps: int):
    """The converted model's config at the release's shapes (scale 1) or ``scale`` times narrower."""
    widths = tuple(c // scale for c in (320, 640, 1280, 1280))
    unet = {"in_channels": 9, "out_channels": 4, "context_dim": 2048 // scale, "block_out_channels": widths,
            "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, "layers_per_block": 2,
            "linear_projection": True}
    text = {"dim": 2048 // scale, "max_len": 12, "layers": 12, "ff_dim": 2048 // scale, "final_norm": False}
    vae = {"block_out_channels": tuple(c // scale for c in (128, 256, 512, 512)), "layers_per_block": 2,
           "latent_channels": 4}
    groups = min(32, vae["block_out_channels"][0])
    # as many heads as the release (64-channel heads at full size); the UNet's GroupNorms: 32 groups, or the
    # largest count dividing the narrowed widths (unet.build_unet)
    return build_config(unet, text, vae, [f"unet.head_channels={64 // scale}", f"vae.norm_groups={groups}",
                                          f"sample.steps={steps}"])


def parameters(model) -> dict[str, int]:
    return {part: sum(p.numel() for p in getattr(model, part).parameters()) for part in ("unet", "text_encoder", "vae")}


def unet_flops(model, cfg) -> int:
    """FLOPs of one UNet call at the config's latent size, batch 2 (CFG's conditional + unconditional)."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.unet.parameters()).device
    h, w = cfg.latent_size
    x = torch.zeros(2, cfg.unet_in_channels, h, w, device=device)
    ctx = torch.zeros(2, cfg.max_len, cfg.text.dim, device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.unet(x, torch.tensor([999, 999], device=device), encoder_hidden_states=ctx)
    return int(counter.get_total_flops())


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--scale", type=int, default=8, help="how many times narrower than the release")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(0)
    small_cfg = release_config(args.scale, args.steps)
    pipe = DreamTextPipeline(DreamTextModel(small_cfg, load_base=False), small_cfg)
    photo = np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    box = [(140, 220, 380, 290)]
    pipe.edit(photo, box, ["warmup"], steps=2)
    rss_loaded = _kib("VmRSS")
    walls, cpus, peaks = [], [], []
    for r in range(args.repeats):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        t0, c0 = time.perf_counter(), time.process_time()
        pipe.edit(photo, box, ["Hello"], seed=r)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        peaks.append(_kib("VmHWM") - rss_loaded)

    full_cfg = release_config(1, args.steps)
    with torch.device("meta"):
        full = DreamTextModel(full_cfg, load_base=False)
    small_params, full_params = parameters(pipe.model), parameters(full)
    small_flops, full_flops = unet_flops(pipe.model, small_cfg), unet_flops(full, full_cfg)
    wall, cpu, peak_mib = statistics.median(walls), statistics.median(cpus), max(peaks) / 1024
    report = {
        "setting": {"steps": args.steps, "sampler": small_cfg.sample.sampler, "guidance": small_cfg.sample.guidance,
                    "window": list(small_cfg.image_size), "latent": list(small_cfg.latent_size),
                    "threads": torch.get_num_threads(), "scale": args.scale},
        "measured_scaled_down": {"parameters": small_params, "unet_gflops_per_call": small_flops / 1e9,
                                 "seconds_per_edit_wall": round(wall, 2), "seconds_per_edit_cpu": round(cpu, 2),
                                 "peak_activation_mib": round(peak_mib, 1)},
        "full_size": {"parameters": full_params,
                      "weights_gib_float32": round(sum(full_params.values()) * 4 / 2**30, 2),
                      "weights_gib_float16": round(sum(full_params.values()) * 2 / 2**30, 2),
                      "unet_gflops_per_call": round(full_flops / 1e9, 1),
                      "unet_tflops_per_edit": round(full_flops * args.steps / 1e12, 2)},
        "estimate_full_size_this_cpu": {
            "seconds_per_edit_cpu": round(cpu * full_flops / small_flops),
            "peak_activation_gib": round(peak_mib * args.scale / 1024, 2)},
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
