"""Are the character masks limited by the attention or by the generated letters? Masks on the real crops.

`dreamtext eval` scores the §3 masks of the model's own *generated* crop against the ground truth of the
*original* word, so a letter drawn a few pixels off costs IoU however good the attention is. Here the model
is shown each `bench` record's real crop, noised to a fixed timestep t (the training forward pass:
`losses.run_model`, no condition dropped), and the same §3 masks (`losses.estimate_masks`) are scored
against the ground truth in the 32×128 crop, per record with `metrics.char_mask_miou` as the evaluation
does, then averaged:

* `§3`: the masks as the pipeline predicts them (`sample.mask_rule = "attention"`);
* `§3 → strokes`: narrowed to the real crop's text pixels (`char_masks.refine_to_strokes`, the
  `"strokes"` rule, here on the picture whose strokes the ground truth describes);
* `even slices of the strokes` (once, no model): the same text pixels cut into n equal slices of the
  quad, letter-blind — what the strokes alone give without the attention.

    .venv/bin/python benchmarks/mask_teacher_forced.py --limit 128
"""

from __future__ import annotations

import argparse
import time

import numpy as np


class FixedTimestep:
    """The noise process with every sample at timestep ``t`` (the rest delegated)."""

    def __init__(self, noise_process, t: int):
        self.inner, self.t = noise_process, int(t)

    def sample_timesteps(self, n, generator, device):
        import torch

        return torch.full((n,), self.t, dtype=torch.long, device=device)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", default=None, help="run, checkpoint or pipeline directory (default: shipped)")
    ap.add_argument("--limit", type=int, default=128, help="first N bench records")
    ap.add_argument("--timesteps", default="0,100,300,500,700,900")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()

    import torch

    from dreamtext.data.sources import bench_source
    from dreamtext.data.transforms import make_model_sample
    from dreamtext.diffusion.noise import NoiseProcess
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.evaluation.metrics import char_mask_miou, even_slice_masks
    from dreamtext.model.char_masks import refine_to_strokes, resize_char_masks, text_pixels
    from dreamtext.train.losses import estimate_masks, run_model

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    pipe = DreamTextPipeline.from_pretrained(args.ckpt)
    model, cfg = pipe.model.float().eval(), pipe.cfg
    hw = tuple(cfg.image_size)
    records = [r for r, _ in zip(bench_source(cfg), range(args.limit))]
    samples = [make_model_sample(r, cfg) for r in records]
    crops = [((s["image"].transpose(1, 2, 0) + 1.0) * 127.5).clip(0, 255).round().astype(np.uint8) for s in samples]
    regions = [s["mask"][0] > 0.5 for s in samples]
    gts = [s["char_masks"][: len(s["text"])] > 0.5 for s in samples]
    strokes = [text_pixels(c, m) for c, m in zip(crops, regions)]
    blind = np.mean([char_mask_miou(even_slice_masks(s["word_quad"], len(s["text"]), hw) & st, gt)
                     for s, st, gt in zip(samples, strokes, gts)])
    noise = NoiseProcess(cfg)
    timesteps = [int(t) for t in args.timesteps.split(",")]
    rows = []
    for t in timesteps:
        attn, refined = [], []
        for first in range(0, len(samples), args.batch):
            part = samples[first:first + args.batch]
            batch = {k: torch.from_numpy(np.stack([s[k] for s in part])) for k in part[0]
                     if isinstance(part[0][k], (np.ndarray, np.generic))}
            with torch.no_grad():
                out = run_model(model, FixedTimestep(noise, t), batch, cfg, generator=torch.Generator().manual_seed(first),
                                drop=torch.zeros(len(part), dtype=torch.bool), heads=False)
                pred = estimate_masks(out, batch, 0, cfg)["pred_masks"]  # bool (B, L, h', w'), §3's resolution
                full = resize_char_masks(pred, hw).numpy()  # the crop's resolution, where the ground truth is
                pred = pred.numpy()
            for k, s in enumerate(part):
                i, n = first + k, len(s["text"])
                attn.append(char_mask_miou(full[k, :n], gts[i]))
                refined.append(char_mask_miou(refine_to_strokes(pred[k, :n], crops[i], regions[i]), gts[i]))
        rows.append((t, float(np.mean(attn)), float(np.mean(refined))))
    print(f"{len(samples)} bench records, checkpoint {args.ckpt or 'shipped'}, {time.perf_counter() - t0:.0f} s\n")
    print("| t | §3 masks | §3 → strokes of the real crop | even slices of the same strokes (no model) |")
    print("| ---: | ---: | ---: | ---: |")
    for t, a, r in rows:
        print(f"| {t} | {a:.3f} | {r:.3f} | {blind:.3f} |")


if __name__ == "__main__":
    main()
