"""``dreamtext train-refiner``: train the detail refiner that gives enlarged regions the photo's own sharpness."""

from __future__ import annotations

from .small_model import add_small_model_parser, run_small_model


def register(subparsers) -> None:
    add_small_model_parser(
        subparsers, "train-refiner",
        help="train the detail refiner (a small convolutional net) that sharpens regions larger than the "
             "model's window",
        description="Train dreamtext.model.refiner's DetailRefiner on the generator's same-style pairs at word "
                    "heights of 16-170 px: the ground truth's model window, enlarged as the paste-back enlarges it, "
                    "against the ground truth at full resolution. Checkpoints go to OUT/checkpoints; --resume "
                    "continues a killed run. At the end it scores held-out pairs of the paired benchmark. "
                    "--export DIR then writes the weights alone (e.g. dreamtext/assets/refiner).",
        example="refiner.steps=500", run=run)


def run(args) -> int:
    from ..train.refiner_train import export_refiner, train_refiner

    return run_small_model(args, "refiner", train_refiner, export_refiner,
                           lambda s: f"held-out pairs ({s['eval_pairs']}): pixel L1 {s['eval_l1_bilinear']:.4f} "
                                     f"bilinear → {s['eval_l1_refined']:.4f} refined, gradient L1 "
                                     f"{s['eval_grad_bilinear']:.4f} → {s['eval_grad_refined']:.4f}")
