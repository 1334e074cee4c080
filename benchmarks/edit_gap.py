"""Why does editing read worse than reconstruction? The edit words written into scenes made for them.

`dreamtext eval --task edit` asks for record i's held-out word (`edit_word_for(text, i)`) in the scene and
the box of record i's *own* word. This benchmark re-renders each `bench` scene with the edit word in place
of the original (the generator's random stream is otherwise the same: same background, font, colours,
geometry) and reconstructs it, so the target words and the seeds are exactly the edit task's:

* `--quad own`: the new word's own box: no trace of the old word, and a box cut for the new word;
* `--quad old`: the old word's box on the new scene: the edit's box without the old word's traces. Where
  the new word's ink reaches outside the old box the model sees part of the answer; `contained.txt` in
  the output folder says, per record, whether the new ink lies wholly inside the old box.

Compare the output's `samples.csv` with the same records of a `dreamtext eval --task edit` run (same seed,
same model) record by record:

    .venv/bin/python benchmarks/edit_gap.py --quad own --limit 128 --out runs/edit-gap/own
"""

from __future__ import annotations

import argparse
from pathlib import Path


def patch_generator(quad: str) -> dict:
    """Make every SynthGenerator draw the edit word instead of its own (see the module doc); returns the
    ``{index: new ink inside the old box}`` dict that fills as records are drawn."""
    import dreamtext.data.render as render
    from dreamtext.data.geometry import fill_quad
    from dreamtext.data.words import edit_word_for

    state = {"index": None, "swap": False}
    contained: dict[int, bool] = {}
    draw_record, draw_word = render.SynthGenerator.sample, render.sample_word

    def word(rng, *args, **kwargs):
        own = draw_word(rng, *args, **kwargs)  # the same random draws as the original word's
        return edit_word_for(own, state["index"]) if state["swap"] else own

    def sample(self, index):
        state.update(index=int(index), swap=False)
        old = draw_record(self, index)
        state["swap"] = True
        try:
            new = draw_record(self, index)
        finally:
            state["swap"] = False
        inside = fill_quad(old.word_quad, new.image.shape[:2]).astype(bool)
        contained[int(index)] = not bool((new.char_masks.any(0) & ~inside).any())
        if quad == "old":
            new.word_quad = old.word_quad
        return new

    render.SynthGenerator.sample, render.sample_word = sample, word
    return contained


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quad", choices=("own", "old"), default="own", help="the box the model is given")
    ap.add_argument("--ckpt", default=None, help="run, checkpoint or pipeline directory (default: shipped)")
    ap.add_argument("--limit", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.evaluation.evaluate import EvalSettings, evaluate

    contained = patch_generator(args.quad)
    pipe = DreamTextPipeline.from_pretrained(args.ckpt)  # in this process: workers would not see the patch
    results = evaluate(EvalSettings(task="recon", limit=args.limit, batch=args.batch, workers=1), args.out,
                       pipeline=pipe)
    Path(args.out, "contained.txt").write_text("".join(f"{i} {int(c)}\n" for i, c in sorted(contained.items())))
    m = results["metrics"]
    print(f"edit words in their own scenes, {args.quad} box: SeqAcc ci {100 * m['seq_acc_ci']:.1f} %, NED "
          f"{m['ned']:.3f} over {results['n_samples']} records; new ink inside the old box for "
          f"{sum(contained.values())} of {len(contained)}")


if __name__ == "__main__":
    main()
