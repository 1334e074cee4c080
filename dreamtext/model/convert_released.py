"""The paper's released weights → a model directory this program loads (``dreamtext convert``).

Sources (the layouts of the released code, DreamText's ``configs/test.yaml`` and UDiffText's README):

- a DreamText bundle directory::

      checkpoints/pre_trained.ckpt                  Lightning checkpoint: state_dict with
                                                      model.diffusion_model.*   the UNet (LDM layout)
                                                      conditioner.embedders.0.* the LabelEncoder
                                                      conditioner.embedders.2.model.* the masked-image AE copy
                                                      first_stage_model.*       the VAE
                                                      denoiser.sigmas, loss_fn.* (not weights of the model)
      AEs/AE_inpainting_2.safetensors               the VAE, where the checkpoint lacks it
      encoders/LabelEncoder/epoch=19-step=7820.ckpt the pre-trained LabelEncoder, where the checkpoint lacks it
      predictors/parseq-bb5792a6.pt                 PARSeq, the release's OCR: never opened (ours reads text)

  (the folder holding ``checkpoints/``, or ``checkpoints/`` itself); as in the release, the weights inside
  ``pre_trained.ckpt`` win over the separate files;
- a single UDiffText checkpoint (``st-step=100000+la-step=100000-{v1,v2,simp}.ckpt``): the same state dict.

Output: a pipeline directory (``config.json`` — the sd2 preset with the release's shapes and its sampling,
``sample.sampler = "euler-edm"``, 50 steps, CFG 5 — ``model.safetensors``, ``state.json`` naming every source
file with its sha256), written atomically under the export rules of :func:`checkpoint.export_mode`. Nothing
from a checkpoint runs (:mod:`dreamtext.model.safe_load`). The LabelEncoder's heads have no counterpart in our
ψ and are dropped; our heads start fresh (seeded): they only serve training losses, never sampling.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import DreamTextConfig, load_config, paper_sampling, parse_overrides
from ..errors import CheckpointError
from . import released_keys as rk
from .safe_load import load_lightning_state, load_safetensors

# The bundle's files, inside its checkpoints/ folder (the release's configs name them ./checkpoints/...).
MAIN_CKPT = "pre_trained.ckpt"
AE_FILE = "AEs/AE_inpainting_2.safetensors"
LABEL_ENCODER_CKPT = "encoders/LabelEncoder/epoch=19-step=7820.ckpt"
PARSEQ_FILE = "predictors/parseq-bb5792a6.pt"
ENCODER_PREFIX = "conditioner.embedders.0."
VAE_PREFIX = "first_stage_model."
# Parts of the release's state dict that are not weights of the model: the denoiser's sigma table (checked
# against our schedule) and the training losses' modules (e.g. an OCR model), dropped.
NOT_MODEL_PREFIXES = ("denoiser.", "loss_fn.", "model_ema.")
FRESH_ENCODER_PARTS = ("char_head", "pos_head", "text_proj", "visual", "image_proj", "logit_scale")
RELEASE_TEXT_HEADS = 8  # LabelEncoder n_heads (not in the weights)
RELEASE_HEAD_CHANNELS = 64  # the UNet's num_head_channels (not in the weights)


@dataclass
class Conversion:
    """What a conversion read and wrote (the CLI prints it; ``state.json`` keeps it as ``source``)."""

    out: Path
    cfg: DreamTextConfig
    kind: str  # "DreamText bundle" or "UDiffText checkpoint"
    files: dict[str, dict] = field(default_factory=dict)  # path → {"sha256", "bytes", "parts"}
    dropped: dict[str, int] = field(default_factory=dict)  # source prefix → tensors left out
    fresh: list[str] = field(default_factory=list)  # our weights with no released counterpart
    params: dict[str, int] = field(default_factory=dict)  # unet / text_encoder / vae → parameters

    def source(self) -> dict:
        return {"converted_from": self.kind, "files": self.files, "dropped": self.dropped,
                "fresh": self.fresh, "parameters": self.params}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def find_sources(source: str | Path) -> tuple[str, Path, Path, dict[str, Path]]:
    """(kind, root the file names are relative to, main checkpoint, the bundle's other files by role) of a
    bundle folder (the one holding ``checkpoints/``, or ``checkpoints/`` itself) or a single checkpoint."""
    source = Path(source)
    if not source.exists():
        raise CheckpointError(f"{str(source)!r} does not exist: give the DreamText bundle folder (holding "
                              f"checkpoints/{MAIN_CKPT}) or a UDiffText .ckpt file")
    if source.is_file():
        return "UDiffText checkpoint", source.parent, source, {}
    folder = source if (source / MAIN_CKPT).is_file() else source / "checkpoints"
    main = folder / MAIN_CKPT
    if not main.is_file():
        raise CheckpointError(f"the DreamText bundle {str(source)!r} is missing checkpoints/{MAIN_CKPT} (the "
                              f"released model; beside it checkpoints/{AE_FILE} and checkpoints/{LABEL_ENCODER_CKPT})")
    extra = {role: folder / rel for role, rel in (("vae", AE_FILE), ("label_encoder", LABEL_ENCODER_CKPT),
                                                  ("ocr", PARSEQ_FILE))}
    return "DreamText bundle", folder.parent, main, extra


def _record(conv: Conversion, path: Path, part: str, root: Path) -> None:
    name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    if name not in conv.files:
        conv.files[name] = {"sha256": sha256_of(path), "bytes": path.stat().st_size, "parts": []}
    conv.files[name]["parts"].append(part)


def check_sigmas(sigmas: torch.Tensor, cfg: DreamTextConfig, where: str) -> None:
    """The release's ``denoiser.sigmas`` (1000, ascending) must be our schedule's √((1 − ᾱ)/ᾱ)."""
    d = cfg.diffusion
    betas = torch.linspace(d.beta_start ** 0.5, d.beta_end ** 0.5, d.num_train_timesteps, dtype=torch.float64) ** 2
    alpha_bar = torch.cumprod(1 - betas, 0)
    ours = ((1 - alpha_bar) / alpha_bar).sqrt()
    theirs = sigmas.double().flatten()
    if theirs.shape != ours.shape or not torch.allclose(theirs.sort().values, ours, rtol=1e-3):
        raise CheckpointError(f"{where}: denoiser.sigmas ({tuple(sigmas.shape)}) are not LDM's scaled-linear "
                              f"schedule (β {d.beta_start} → {d.beta_end}, {d.num_train_timesteps} steps) that "
                              "the released models were trained with: another model")


def build_config(unet: dict, text: dict, vae: dict, overrides: list[str] | None) -> DreamTextConfig:
    """The sd2 preset with the shapes read from the weights, the release's settings that are not in them, its
    sampling (:func:`config.paper_sampling`), no padding mask (the release attends to every slot), then the
    user's ``key=value`` overrides — all checked at once."""
    if unet["in_channels"] != 2 * vae["latent_channels"] + 1 or unet["out_channels"] != vae["latent_channels"]:
        raise CheckpointError(f"the UNet takes {unet['in_channels']} channels and gives {unet['out_channels']}; "
                              f"an inpainting UNet over {vae['latent_channels']}-channel latents takes "
                              f"{2 * vae['latent_channels'] + 1} (latent + mask + masked latent): another model")
    if unet["context_dim"] != text["dim"]:
        raise CheckpointError(f"the UNet's character cross-attention reads {unet['context_dim']}-wide vectors but "
                              f"the LabelEncoder writes {text['dim']}: the files belong to different models")
    base, paper = load_config("sd2"), paper_sampling()
    settings = {
        "max_len": text["max_len"], "latent_channels": vae["latent_channels"],
        "text.dim": text["dim"], "text.layers": text["layers"], "text.heads": RELEASE_TEXT_HEADS,
        "text.ff_dim": text["ff_dim"], "text.activation": "relu", "text.norm_first": False,
        "text.final_norm": text["final_norm"],
        "unet.block_out_channels": list(unet["block_out_channels"]),
        "unet.down_block_types": list(unet["down_block_types"]), "unet.up_block_types": list(unet["up_block_types"]),
        "unet.layers_per_block": unet["layers_per_block"], "unet.head_channels": RELEASE_HEAD_CHANNELS,
        "unet.linear_projection": unet["linear_projection"], "unet.only_cross_attention": False,
        "unet.mask_padding": False, "unet.base_path": None,
        "vae.block_out_channels": list(vae["block_out_channels"]), "vae.layers_per_block": vae["layers_per_block"],
        **{f"sample.{k}": getattr(paper, k) for k in ("sampler", "steps", "guidance", "restarts")},
        "sample.upscale": "bilinear",  # the paper's paste-back: the window enlarged as it is (no refiner for it)
    }
    return base.override({**settings, **parse_overrides(list(overrides or []))})  # one check of the whole


def _expected_shapes(cfg: DreamTextConfig) -> tuple[dict[str, tuple], dict]:
    """name → shape of every weight of the model ``cfg`` builds (built on the meta device: no memory), and the
    configs of its diffusers UNet and VAE."""
    from .network import DreamTextModel

    with torch.device("meta"):
        model = DreamTextModel(cfg, load_base=False)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return shapes, {"unet": dict(model.unet.config), "vae": dict(model.vae.config)}


def _fresh_encoder_parts(cfg: DreamTextConfig) -> dict[str, torch.Tensor]:
    """Our ψ's heads, ξ and τ, freshly initialised (seed 0): the release has no counterpart for them. Built on a
    one-layer copy of ψ (the heads' shapes do not depend on the depth) to spare the memory of twelve layers."""
    from .text_encoder import TextEncoder

    torch.manual_seed(0)
    encoder = TextEncoder(cfg.override({"text.layers": 1}))
    return {k: v for k, v in encoder.state_dict().items() if k.split(".")[0] in FRESH_ENCODER_PARTS}


def convert_release(source: str | Path, out: str | Path, *, force: bool = False, half: bool = False,
                    overrides: list[str] | None = None) -> Conversion:
    """Convert a DreamText bundle or a UDiffText checkpoint into the pipeline directory ``out``."""
    from .checkpoint import export_mode, save_checkpoint

    merge = export_mode(out, kind="pipeline", force=force)  # refuse before reading gigabytes
    kind, root, main_path, extra = find_sources(source)
    main = load_lightning_state(main_path)
    where = repr(str(main_path))

    # ---- which part of which file: the checkpoint's own weights first, as the release loads them last
    unet_ldm = rk.with_prefix(main, rk.UNET_PREFIX)
    if not unet_ldm:
        some = sorted({k.split(".")[0] for k in main})[:5]
        raise CheckpointError(f"{where} holds no model.diffusion_model.* weights (its keys start with {some}): "
                              "not a DreamText/UDiffText checkpoint")
    encoder_src, encoder_from = rk.with_prefix(main, ENCODER_PREFIX), main_path
    if not encoder_src:
        path = extra.get("label_encoder")
        if path is None or not path.is_file():
            raise CheckpointError(f"{where} has no LabelEncoder ({ENCODER_PREFIX}*) and "
                                  + (f"the bundle is missing checkpoints/{LABEL_ENCODER_CKPT}" if extra else
                                     "a single checkpoint must hold it: not a DreamText/UDiffText checkpoint"))
        encoder_src, encoder_from = load_lightning_state(path), path
    vae_src, vae_from = rk.with_prefix(main, VAE_PREFIX), main_path
    # The LatentEncoder's copy of the AE (conditioner.embedders.N.model.*), which encodes the masked image.
    copies = {n: rk.with_prefix(main, f"conditioner.embedders.{n}.model.")
              for n in {k.split(".")[2] for k in main if k.startswith("conditioner.embedders.")} - {"0"}}
    copies = {n: c for n, c in copies.items() if c}
    known = [k for k in main if k.startswith((rk.UNET_PREFIX, ENCODER_PREFIX, VAE_PREFIX, *NOT_MODEL_PREFIXES))]
    known += [f"conditioner.embedders.{n}.model.{k}" for n, c in copies.items() for k in c]
    rk.check_all_used(main, set(known), where)
    if not vae_src and copies:
        vae_src = next(iter(copies.values()))
    if not vae_src:
        path = extra.get("vae")
        if path is None or not path.is_file():
            raise CheckpointError(f"{where} has no VAE ({VAE_PREFIX}*) and "
                                  + (f"the bundle is missing checkpoints/{AE_FILE}" if extra else
                                     "a single checkpoint must hold it: not a DreamText/UDiffText checkpoint"))
        vae_src = {k[len(VAE_PREFIX):] if k.startswith(VAE_PREFIX) else k: v for k, v in load_safetensors(path).items()
                   if not k.startswith("loss.")}  # an AE file may keep its training loss (discriminator, LPIPS)
        vae_from = path
    for n, copy in copies.items():  # our pipeline encodes and decodes with one VAE: the copy must equal it
        differ = [k for k in copy if k not in vae_src or not torch.equal(copy[k], vae_src[k])]
        if differ:
            raise CheckpointError(f"{where}: the masked-image encoder conditioner.embedders.{n}.model.* differs "
                                  f"from the VAE at {differ[0]!r}; this pipeline encodes and decodes with one VAE")

    # ---- the model's shapes, from the weights
    rk.check_is_dreamtext_unet(unet_ldm, where)
    unet_ldm = rk.rename_char_attention(unet_ldm)
    cfg = build_config(rk.unet_settings(unet_ldm, where), rk.encoder_settings(encoder_src, repr(str(encoder_from))),
                       rk.vae_settings(vae_src, repr(str(vae_from))), overrides)
    conv = Conversion(out=Path(out), cfg=cfg, kind=kind)
    if "denoiser.sigmas" in main:
        check_sigmas(main["denoiser.sigmas"], cfg, where)
    expected, configs = _expected_shapes(cfg)

    # ---- convert each part, naming whatever has no place
    unet, origin = rk.convert_unet(unet_ldm, configs["unet"])
    rk.check_all_used(unet_ldm, rk.placed(origin, "unet.", expected), f"{where} (model.diffusion_model.*)")
    vae, origin = rk.convert_vae(vae_src, configs["vae"])
    rk.check_all_used(vae_src, rk.placed(origin, "vae.", expected), repr(str(vae_from)))
    text, origin, dropped = rk.convert_label_encoder(encoder_src, repr(str(encoder_from)))
    rk.check_all_used(encoder_src, rk.placed(origin, "text_encoder.", expected) | dropped, repr(str(encoder_from)))
    fresh = _fresh_encoder_parts(cfg)
    state = {**{"unet." + k: v for k, v in unet.items()}, **{"text_encoder." + k: v for k, v in text.items()},
             **{"text_encoder." + k: v for k, v in fresh.items()}, **{"vae." + k: v for k, v in vae.items()}}
    rk.check_state(expected, state, f"converting {str(source)!r}")

    # ---- what came from where
    prefix = ENCODER_PREFIX if encoder_from == main_path else ""
    for part in sorted({k.split(".")[0] for k in dropped} - {"pos_embedding"}):
        conv.dropped[prefix + part] = sum(1 for k in dropped if k.split(".")[0] == part)
    for n, copy in copies.items():
        conv.dropped[f"conditioner.embedders.{n}.model (the masked-image AE, equal to the VAE)"] = len(copy)
    for p in NOT_MODEL_PREFIXES:
        if any(k.startswith(p) for k in main):
            conv.dropped[p.rstrip(".")] = sum(1 for k in main if k.startswith(p))
    conv.fresh = sorted({"text_encoder." + k.split(".")[0] for k in fresh})
    _record(conv, main_path, "unet", root)
    _record(conv, encoder_from, "text_encoder", root)
    _record(conv, vae_from, "vae", root)
    if extra.get("ocr") is not None and extra["ocr"].exists():
        conv.files[str(extra["ocr"].relative_to(root))] = {"parts": ["not read: the release's OCR (PARSeq)"]}
    conv.params = {part: sum(int(torch.Size(s).numel()) for k, s in expected.items() if k.startswith(part + "."))
                   for part in ("unet", "text_encoder", "vae")}

    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_checkpoint(out, cfg, {"model": state}, {"kind": "pipeline", "source": conv.source()}, merge=merge)
    return conv
