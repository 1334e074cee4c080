"""Character-mask rules compared on the same sampling runs: is it the §3 rule or the attention maps?

    .venv/bin/python benchmarks/mask_rules.py --ckpt runs/ship-v3-step3000 --limit 32 --steps 10 --restarts 0

Each of the first N ``bench`` records is reconstructed once (``DreamTextPipeline.edit``, seed = index); the
attention maps of the recorded steps are kept and turned into masks by several rules, each warped back to
the image like the pipeline's and scored with the evaluation's ``char_mask_miou``:

* maps: ``all`` (every map with a side ≥ s_min, DESIGN §3) or ``full-res`` (only the maps at the model's
  resolution), each ``blurred`` (§3's 3×3 Gaussian) or ``raw``;
* threshold: ``mean+2std`` (§3), ``mean+1std``, or ``mean+2std, argmax`` (a pixel belongs to at most one
  character: the one with the largest Ā there).

Row ``all, blurred, mean+2std`` is the §3 rule the pipeline uses (it equals the ``pipeline`` line);
``pipeline, strokes`` is ``sample.mask_rule = "strokes"`` (``char_masks.refine_to_strokes``) on the same runs,
and ``letter-blind: even slices of those strokes`` its reference: the same stroke pixels, cut into equal slices.
"""

from __future__ import annotations

import argparse


def main() -> None:
    import numpy as np
    import torch

    import dreamtext.diffusion.sampling as sampling
    from dreamtext.data.geometry import apply_matrix, fill_quad
    from dreamtext.data.sources import open_source
    from dreamtext.edit.paste import masks_to_image, region_support
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.evaluation.metrics import char_mask_miou, even_slice_masks
    from dreamtext.model.char_masks import blur3, predict_char_masks, refine_to_strokes, resize_map, select_maps

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default=None, help="run, checkpoint or pipeline directory (default: shipped)")
    ap.add_argument("--limit", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--restarts", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    pipe = DreamTextPipeline.from_pretrained(args.ckpt)
    cfg = pipe.cfg
    hw = tuple(cfg.latent_size)
    sums: dict[tuple[str, str], torch.Tensor] = {}
    aggregate = sampling._aggregate

    def keep_maps(model, maps, batch):  # wraps the sampler's §3 aggregation: same maps, other rules
        maps = [m[:batch].float() for m in maps]
        used = select_maps(maps, cfg.loss.s_min)
        for name, chosen in (("all", used), ("full-res", [m for m in used if tuple(m.shape[-2:]) == hw])):
            if chosen:
                raw = torch.stack([resize_map(m, hw) for m in chosen]).mean(0)
                for blur, a in (("blurred", blur3(raw)), ("raw", raw)):
                    sums[(name, blur)] = sums.get((name, blur), 0) + a
        return aggregate(model, maps, batch)

    def rule(a: torch.Tensor, how: str) -> torch.Tensor:
        if how == "mean+1std":
            flat = a.flatten(2)
            return (flat > flat.mean(-1, keepdim=True) + flat.std(-1, keepdim=True, unbiased=False)).reshape(a.shape)
        masks = predict_char_masks(a)
        return masks & (a == a.max(1, keepdim=True).values) if how == "mean+2std, argmax" else masks

    sampling._aggregate = keep_maps
    scores: dict[str, list[float]] = {}
    try:
        for index, record in enumerate(open_source("bench", cfg, split="bench")):
            if index >= args.limit:
                break
            if record.char_masks is None:
                continue
            sums.clear()
            result = pipe.edit(record.image, [record.word_quad], [record.text], steps=args.steps,
                               restarts=args.restarts, seed=index)
            region, n = result.regions[0], len(record.text)
            support = region_support(region.quad, record.image.shape[:2], region.feather_px)
            scores.setdefault("pipeline", []).append(char_mask_miou(region.char_masks, record.char_masks))
            # sample.mask_rule = "strokes": the pipeline's §3 masks narrowed to the generated crop's text pixels
            in_crop = fill_quad(apply_matrix(region.matrix, region.quad), tuple(cfg.image_size)) > 0
            strokes = refine_to_strokes(region.crop_char_masks, region.crop, in_crop)
            scores.setdefault("pipeline, strokes (sample.mask_rule)", []).append(char_mask_miou(
                masks_to_image(strokes, region.matrix, tuple(cfg.image_size), record.image.shape[:2], support),
                record.char_masks))
            # Its letter-blind twin: the same stroke pixels cut into n even slices of the word box.
            slices = even_slice_masks(region.quad, n, record.image.shape[:2])
            stroke_pixels = masks_to_image(strokes.any(0, keepdims=True), region.matrix, tuple(cfg.image_size),
                                           record.image.shape[:2], support)[0] if n else None
            if stroke_pixels is not None:
                scores.setdefault("letter-blind: even slices of those strokes", []).append(
                    char_mask_miou(slices & stroke_pixels[None], record.char_masks))
            for (maps, blur), a in sums.items():
                for how in ("mean+2std", "mean+1std", "mean+2std, argmax"):
                    masks = rule(a[:, :n], how)[0].numpy()
                    image_masks = masks_to_image(masks, region.matrix, tuple(cfg.image_size),
                                                 record.image.shape[:2], support)
                    scores.setdefault(f"{maps}, {blur}, {how}", []).append(
                        char_mask_miou(image_masks, record.char_masks))
    finally:
        sampling._aggregate = aggregate
    print(f"first {args.limit} bench records, {args.steps} steps, {args.restarts} restarts, "
          f"{len(scores['pipeline'])} with ground-truth masks")
    print("| maps, blur, threshold | mask mIoU |\n|---|---:|")
    for name, values in scores.items():
        print(f"| {name} | {np.mean(values):.3f} |")


if __name__ == "__main__":
    main()
