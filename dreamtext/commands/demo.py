"""``dreamtext demo``: edit the sample photographs shipped with the package (the README's main command).

Loads the shipped model (or ``--ckpt``), writes new words into the regions
listed in ``dreamtext/assets/samples/samples.json`` and saves, in ``--out``:

- ``<sample>_edited.png``: the edited photograph (the input's size);
- ``<sample>_before_after.png``: input | result | result with each character's
  predicted mask in its own colour (DESIGN §3), with a colour legend;
- ``demo.png``: all before/after pictures stacked, the one to look at first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import DreamTextError

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"


def register(subparsers) -> None:
    from .options import add_sampling_options

    p = subparsers.add_parser("demo", help="edit the shipped sample photographs and write before/after pictures",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_out", help="folder for the pictures (default: demo_out)")
    p.add_argument("--only", help="run just the sample with this image name (e.g. coffee.jpg)")
    add_sampling_options(p)
    p.set_defaults(func=run)


def load_samples(samples_dir: Path = SAMPLES_DIR) -> list[dict]:
    """The shipped samples: ``[{"image": path, "regions": [...], "texts": [...]}]``."""
    spec = samples_dir / "samples.json"
    if not spec.is_file():
        raise DreamTextError(f"the sample list {str(spec)!r} is missing from this installation")
    samples = []
    for item in json.loads(spec.read_text()):
        regions = [{k: v for k, v in r.items() if k in ("box", "quad")} for r in item["regions"]]
        samples.append({"image": str(samples_dir / item["image"]), "name": Path(item["image"]).stem,
                        "regions": regions, "texts": [r["text"] for r in item["regions"]]})
    return samples


def run(args) -> int:
    from tqdm.auto import tqdm

    from ..io_utils import atomic_save_image
    from ..visualize import image_grid
    from .edit import load_pipeline, sampling_kwargs

    samples = load_samples()
    if args.only:
        samples = [s for s in samples if Path(s["image"]).name == args.only or s["name"] == args.only]
        if not samples:
            raise DreamTextError(f"no sample named {args.only!r}; see {SAMPLES_DIR / 'samples.json'}")
    pipe = load_pipeline(args.ckpt)
    out = Path(args.out)
    pictures = []
    for sample in tqdm(samples, desc="demo", unit="image"):
        result = pipe.edit(sample["image"], sample["regions"], sample["texts"], **sampling_kwargs(args))
        picture = result.before_after(max_width=480)
        atomic_save_image(out / f"{sample['name']}_edited.png", result.image)
        atomic_save_image(out / f"{sample['name']}_before_after.png", picture)
        pictures.append(picture)
    atomic_save_image(out / "demo.png", image_grid([[p] for p in pictures], pad=6))
    print(f"wrote {len(pictures)} before/after picture(s) to {out}/ — open {out / 'demo.png'}")
    return 0
