"""``dreamtext edit``: write new text into regions of a photograph (DESIGN §7).

One image::

    dreamtext edit photo.jpg --box 10,20,110,52 --text HELLO [--quad x1,y1,...,x4,y4 --text WORLD]
                   -o out.png [--masks masks.png] [--steps N --guidance S --sampler ddim|euler|dpm++ --restarts K --blend feather|poisson|inpaint|recolor|auto --mask-rule attention|strokes --upscale bilinear|unsharp|matte|transfer|refiner --candidates K --no-style-ref --seed N]

Batches (``--spec jobs.json``, a list of ``{"image", "regions": [{"box"|"quad", "text"}], "out"[, "masks"]}``;
relative paths are relative to the spec file) run with a progress bar; a job
that fails reports its error and the others still finish; the exit status is
non-zero if any job failed. Outputs are written atomically (temp file + rename).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import DreamTextError, ImageError, RegionError
from .options import add_sampling_options


class _RegionAction(argparse.Action):
    """``--box`` and ``--quad`` append ``(kind, string)`` to one list, so their order pairs with ``--text``."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((self.const, values))
        setattr(namespace, self.dest, items)


def register(subparsers) -> None:
    p = subparsers.add_parser("edit", help="write new text into regions of an image",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", nargs="?", help="the input image (any format Pillow reads)")
    p.add_argument("--box", dest="regions", action=_RegionAction, const="box", metavar="x0,y0,x1,y1",
                   help="a region as an axis-aligned box in image pixels (repeatable)")
    p.add_argument("--quad", dest="regions", action=_RegionAction, const="quad", metavar="x1,y1,...,x4,y4",
                   help="a region as 4 corners: top-left, top-right, bottom-right, bottom-left (repeatable)")
    p.add_argument("--text", action="append", default=[], help="the string for the region given in the same "
                   "position (repeatable; printable ASCII without spaces)")
    p.add_argument("-o", "--out", help="where to write the edited image (the format follows the extension)")
    p.add_argument("--masks", help="also write the result with each character's predicted mask in its own colour")
    p.add_argument("--spec", help="a JSON list of jobs to run instead of one image")
    add_sampling_options(p)
    p.add_argument("--device", default="cpu",
                   help="where the model samples: cpu (default), cuda or cuda:N; the initial noise is drawn on "
                        "the CPU, so a seed picks the same noise on either")
    p.set_defaults(func=run)


def parse_numbers(kind: str, value: str) -> list[float]:
    """``"10,20,110,52"`` → [10.0, 20.0, 110.0, 52.0], checked for the count a box (4) or quad (8) needs."""
    need = 4 if kind == "box" else 8
    try:
        numbers = [float(v) for v in value.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise RegionError(f"--{kind} {value!r} must be {need} comma-separated numbers") from None
    if len(numbers) != need:
        raise RegionError(f"--{kind} {value!r} must be {need} comma-separated numbers, got {len(numbers)}")
    return numbers


def check_output_path(path, what: str) -> Path:
    """An output path whose extension Pillow can write, in a folder where a file can be created: checked
    before any work is done, by creating (and removing) a temporary file beside it, so nothing is sampled
    only to fail at the end and nothing is half-written."""
    import tempfile

    from PIL import Image

    if not isinstance(path, (str, Path)) or not str(path):
        raise ImageError(f"no {what} path given (-o OUT.png)" if not path else
                         f"the {what} path must be a string, got {path!r}")
    p = Path(path)
    if Image.registered_extensions().get(p.suffix.lower()) is None:
        raise ImageError(f"cannot tell the image format of {what} {str(p)!r} from its extension (use .png or .jpg)")
    if p.is_dir():
        raise ImageError(f"{what} {str(p)!r} is a folder, not a file")
    parent = p.parent
    if not parent.is_dir():
        raise ImageError(f"cannot write {what} {str(p)!r}: {str(parent)!r} is not an existing folder")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{p.name}.", suffix=".probe"):
            pass
    except OSError as e:
        raise ImageError(f"cannot write {what} {str(p)!r}: {e.strerror or e}") from None
    return p


def run(args) -> int:
    from ..sample_options import SampleOptions

    from ..evaluation.protocol import check_device

    check_device(args.device)
    if args.spec:
        if args.image or args.regions or args.text:
            raise DreamTextError("give either --spec or an image with --box/--quad and --text, not both")
        return run_spec(args)
    if not args.image:
        raise DreamTextError("give an image (or --spec jobs.json)")
    regions = [parse_numbers(kind, value) for kind, value in (args.regions or [])]
    if not regions:
        raise RegionError("give at least one region with --box or --quad")
    if len(regions) != len(args.text):
        raise RegionError(f"{len(regions)} region(s) but {len(args.text)} --text value(s): give one text per region")
    out = check_output_path(args.out, "output")
    masks = check_output_path(args.masks, "--masks output") if args.masks else None
    # Everything that can be checked is checked before the model loads (seconds) and samples (more).
    from ..model.checkpoint import model_config

    cfg = model_config(args.ckpt)
    SampleOptions.resolve(cfg, **{k: v for k, v in sampling_kwargs(args).items() if k != "seed"})
    image = check_job_inputs(args.image, regions, args.text, cfg, args.seed, args.candidates, args.upscale)
    pipe = load_pipeline(args.ckpt, args.device)
    result = pipe.edit(image, regions, args.text, progress=True, **sampling_kwargs(args))
    write_result(result, out, masks)
    print(f"wrote {out}" + (f" and {masks}" if masks else ""))
    print_verifier_readings(result)
    return 0


def print_verifier_readings(result) -> None:
    """With candidates: which one was kept per region and what the verifier reads in it."""
    for i, r in enumerate(result.regions):
        if r.candidate_scores is not None:
            scores = ", ".join(f"{v:.2f}" for v in r.candidate_scores)
            print(f"region {i} {r.text!r}: kept candidate {r.chosen} of {len(r.candidate_scores)} "
                  f"(verifier log p per character: {scores}); the verifier reads {r.verifier_reading!r}")


def check_job_inputs(image, regions: list, texts: list, cfg, seed, candidates=None, upscale=None):
    """The photo read (→ uint8 array: the pipeline takes it as is), every region, text, the seed and, for best of
    N, the verifier (for ``upscale = "refiner"`` the refiner) checked: a bad input is one error line before any
    model is loaded or any pixel sampled."""
    from ..config_ranges import MAX_REGIONS
    from ..edit.layout import check_phrase
    from ..edit.regions import check_legible, parse_region
    from ..io_utils import read_image_rgb
    from ..sample_options import check_seed

    if not isinstance(image, str):
        raise ImageError(f"'image' must be a file path, got {image!r}")
    img = read_image_rgb(image)
    if len(regions) > MAX_REGIONS:
        raise RegionError(f"{len(regions)} regions given; one photo takes at most {MAX_REGIONS} per job "
                          "(split them over several jobs)")
    for region, text in zip(regions, texts):
        check_legible(parse_region(region, img.shape[:2]), check_phrase(text, cfg.max_len), cfg.max_len)
    check_seed(seed)
    if (candidates if candidates is not None else cfg.sample.candidates) > 1:
        from ..model.checkpoint import resolve_checkpoint
        from ..model.verifier import SHIPPED_VERIFIER_DIR, verifier_state

        verifier_state(resolve_checkpoint(cfg.sample.verifier or SHIPPED_VERIFIER_DIR))
    if (upscale if upscale is not None else cfg.sample.upscale) == "refiner":
        from ..model.checkpoint import resolve_checkpoint
        from ..model.refiner import SHIPPED_REFINER_DIR, refiner_state

        refiner_state(resolve_checkpoint(cfg.sample.refiner or SHIPPED_REFINER_DIR))
    return img


def load_pipeline(ckpt: str | None, device: str = "cpu"):
    from ..edit.pipeline import DreamTextPipeline

    return DreamTextPipeline.from_pretrained(ckpt, device=device)


def sampling_kwargs(args) -> dict:
    """The sampling options given on the command line (``add_sampling_options``), as ``pipe.edit`` keywords."""
    return {k: getattr(args, k) for k in JOB_OPTIONS}


def write_result(result, out: Path, masks: Path | None) -> None:
    """Both pictures are made in memory first, then each is written atomically."""
    from ..io_utils import atomic_save_image

    masks_picture = result.masks_picture() if masks is not None else None
    atomic_save_image(out, result.image)
    if masks is not None:
        atomic_save_image(masks, masks_picture)


# ----------------------------------------------------------------------------- --spec


def load_spec(path: str | Path) -> list[dict]:
    """The jobs of a spec file, each with its paths made absolute (relative to the spec's folder)."""
    path = Path(path)
    try:
        jobs = json.loads(path.read_text())
    except FileNotFoundError:
        raise DreamTextError(f"spec file {str(path)!r} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DreamTextError(f"spec file {str(path)!r} is not valid JSON: {e}") from None
    except RecursionError:
        raise DreamTextError(f"spec file {str(path)!r} is nested too deeply to be a list of jobs") from None
    if not isinstance(jobs, list) or not jobs:
        raise DreamTextError(f"spec file {str(path)!r} must hold a non-empty JSON list of jobs")
    base = path.resolve().parent
    return [{"_index": i, **job, **_resolved(job, base)} if isinstance(job, dict) else {"_index": i, "_bad": job}
            for i, job in enumerate(jobs)]


def _resolved(job: dict, base: Path) -> dict:
    return {k: str(base / job[k]) for k in ("image", "out", "masks") if isinstance(job.get(k), str)}


# DreamTextPipeline.edit's keyword options: what the command line and a spec job may set.
JOB_OPTIONS = ("steps", "guidance", "sampler", "restarts", "blend", "mask_rule", "candidates", "seed", "style_ref",
               "upscale")


def run_job(pipe, job: dict, defaults: dict) -> str:
    """Edit one spec job; raises a DreamTextError naming what is wrong with it."""
    from ..sample_options import SampleOptions

    if "_bad" in job:
        raise DreamTextError(f"a job must be an object with image, regions and out, got {job['_bad']!r}")
    missing = [k for k in ("image", "regions", "out") if k not in job]
    if missing:
        raise DreamTextError(f"missing key(s) {', '.join(missing)}")
    unknown = sorted(set(job) - {"_index", "image", "regions", "out", "masks", *JOB_OPTIONS})
    if unknown:
        raise DreamTextError(f"unknown key(s) {', '.join(unknown)}")
    regions = job["regions"]
    if not isinstance(regions, list) or not regions:
        raise RegionError("'regions' must be a non-empty list of {box|quad, text}")
    boxes, texts = [], []
    for r in regions:
        if not isinstance(r, dict) or "text" not in r:
            raise RegionError(f"region {r!r} needs a 'text' and a 'box' or 'quad'")
        extra = sorted(set(r) - {"text", "box", "quad"})
        if extra:
            raise RegionError(f"region {r!r} has unknown key(s) {', '.join(map(str, extra))} (a region is "
                              "{'box' or 'quad', 'text'})")
        boxes.append({k: v for k, v in r.items() if k != "text"})
        texts.append(r["text"])
    out = check_output_path(job["out"], "output")
    masks = check_output_path(job["masks"], "masks output") if job.get("masks") is not None else None
    if "style_ref" in job and not isinstance(job["style_ref"], bool):
        raise DreamTextError(f"'style_ref' must be true or false, got {job['style_ref']!r}")
    kwargs = {**defaults, **{k: job[k] for k in JOB_OPTIONS if k in job}}
    SampleOptions.resolve(pipe.cfg, **{k: v for k, v in kwargs.items() if k != "seed"})
    image = check_job_inputs(job["image"], boxes, texts, pipe.cfg, kwargs["seed"], kwargs["candidates"],
                             kwargs["upscale"])
    result = pipe.edit(image, boxes, texts, **kwargs)
    write_result(result, out, masks)
    return str(out)


def run_spec(args) -> int:
    from tqdm.auto import tqdm

    jobs = load_spec(args.spec)
    pipe = load_pipeline(args.ckpt, args.device)
    defaults = sampling_kwargs(args)
    failures = 0
    for job in tqdm(jobs, desc="edit", unit="job"):
        try:
            run_job(pipe, job, defaults)
        except DreamTextError as e:
            failures += 1
            name = job.get("image", f"#{job['_index']}")
            tqdm.write(f"dreamtext edit: job {job['_index']} ({name}): error: {e}", file=sys.stderr)
    print(f"{len(jobs) - failures} of {len(jobs)} job(s) done" + (f", {failures} failed" if failures else ""))
    return 1 if failures else 0
