"""``dreamtext train-verifier``: train the word verifier that picks the best of ``--candidates`` samples."""

from __future__ import annotations

from .small_model import add_small_model_parser, run_small_model


def register(subparsers) -> None:
    add_small_model_parser(
        subparsers, "train-verifier",
        help="train the word verifier (a small CTC recogniser) that chooses among sampled candidates",
        description="Train the CTC word verifier of dreamtext.verifier on the data engine's crops (the model's "
                    "image_size, the region mask beside the crop). Checkpoints go to OUT/checkpoints; --resume "
                    "continues a killed run. At the end it reads the bench split's ground-truth crops and prints "
                    "its accuracy. --export DIR then writes the weights alone (e.g. dreamtext/assets/verifier).",
        example="verifier.steps=500", run=run)


def run(args) -> int:
    from ..train.verifier_train import export_verifier, train_verifier

    return run_small_model(args, "verifier", train_verifier, export_verifier,
                           lambda s: f"reads {s['bench_acc_ci']:.1%} of {s['bench_records']} bench ground-truth "
                                     "crops (case-insensitive)")
