"""Text-encoder pre-training (DESIGN §2): ψ and ξ learn to match a word to its rendering.

Each sample is a word from the data engine's word sources (English words and
random strings, ``dreamtext.data.words``) drawn in one of the installed fonts
(``dreamtext.data.fonts``), grayscale, with random size, ink/paper levels,
slant, blur and noise, its tight box stretched over the ``text.vis_size`` crop
as the data transforms rectify a word quad. Sample ``i`` of seed ``s`` is a
pure function of ``(s, i)``.

Loss (``TextEncoder.pretrain_loss``): symmetric InfoNCE(H_t(ψ(c)), H_v(ξ(glyph)))
+ 0.1·CE(H_l) + 0.1·CE(H_pos). Reported: the text→image top-1 retrieval
accuracy over a batch (chance is 1/batch), on the training batches and on
held-out batches from another seed. The result is a safetensors file of the
``TextEncoder`` state that ``train.encoder_ckpt`` loads into the diffusion model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..charset import encode
from ..config import DreamTextConfig
from ..errors import CheckpointError
from ..io_utils import atomic_write_bytes, atomic_write_text
from ..pixels import to_model_range
from .loop import run_steps
from .utils import MetricsLogger, check_finite, lr_at

EVAL_SEED_OFFSET = 1_000_003  # held-out words come from another seed


def render_word_crop(text: str, vis_hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """``text`` in a random installed font → float32 (1, hv, wv) in [-1, 1] (tight box stretched over the crop)."""
    from PIL import Image, ImageDraw, ImageFilter

    from ..data.fonts import list_fonts, load_font

    fonts = list_fonts()
    font = load_font(fonts[int(rng.integers(len(fonts)))], int(rng.integers(24, 48)))
    x0, y0, x1, y1 = font.getbbox(text)
    pad = int(rng.integers(1, 6))
    w, h = max(1, x1 - x0) + 2 * pad, max(1, y1 - y0) + 2 * pad
    paper, ink = (int(v) for v in rng.integers(0, 256, size=2))
    if abs(paper - ink) < 80:  # keep the word legible
        ink = (paper + 128) % 256
    img = Image.new("L", (w, h), paper)
    ImageDraw.Draw(img).text((pad - x0, pad - y0), text, fill=ink, font=font)
    shear = float(rng.uniform(-0.25, 0.25))  # italic-like slant
    img = img.transform((w, h), Image.AFFINE, (1, shear, -shear * h / 2, 0, 1, 0), resample=Image.BILINEAR,
                        fillcolor=paper)
    hv, wv = vis_hw
    img = img.resize((wv, hv), Image.BILINEAR)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    arr = to_model_range(np.asarray(img))  # (h, w): a grayscale word
    arr = arr + rng.normal(0.0, rng.uniform(0.0, 0.08), size=arr.shape).astype(np.float32)
    return np.clip(arr, -1.0, 1.0)[None]


class RenderedWords(torch.utils.data.Dataset):
    """Map-style dataset: item ``i`` → ``{"token_ids": int64 (L,), "word_crop": f32 (1, hv, wv)}``."""

    def __init__(self, cfg: DreamTextConfig, seed: int = 0, length: int = 2**62, vocab_seed: int | None = None):
        from ..data.words import sample_word

        self.cfg, self.seed, self.length = cfg, int(seed), int(length)
        self.pool: list[str] | None = None
        if cfg.pretrain.vocab > 0:  # the pool depends on vocab_seed only, so held-out renders share it
            rng = np.random.default_rng([int(seed if vocab_seed is None else vocab_seed), 0x70CAB])
            self.pool = [sample_word(rng, cfg.max_len, cfg.data.words) for _ in range(cfg.pretrain.vocab)]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        from ..data.words import sample_word

        rng = np.random.default_rng([self.seed, int(index)])
        if self.pool is not None:
            text = self.pool[int(rng.integers(len(self.pool)))]
        else:
            text = sample_word(rng, self.cfg.max_len, self.cfg.data.words)
        return {
            "token_ids": torch.from_numpy(encode(text, self.cfg.max_len)),
            "word_crop": torch.from_numpy(render_word_crop(text, tuple(self.cfg.text.vis_size), rng)),
        }


def _batches(cfg: DreamTextConfig, seed: int, start: int, batch_size: int, vocab_seed: int | None = None):
    """Batches of ``RenderedWords`` from item ``start`` on, in order (worker processes per ``data.num_workers``)."""
    ds = RenderedWords(cfg, seed, vocab_seed=vocab_seed)
    sampler = range(start, ds.length)
    return iter(torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler,
                                            num_workers=cfg.data.num_workers))


@torch.no_grad()
def evaluate_retrieval(encoder, cfg: DreamTextConfig, batches: int, batch_size: int, seed: int) -> tuple[float, float]:
    """Text→image top-1 retrieval over ``batches`` held-out batches: ``(accuracy, chance)``.

    A retrieved image of the same string counts as a hit, so chance is not
    simply 1/batch: it is the mean over texts of (images of that string in the
    batch) / batch — what a scorer that ignores its inputs would get.
    """
    from ..model.text_encoder import retrieval_accuracy

    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    it = _batches(cfg, seed + EVAL_SEED_OFFSET, 0, batch_size, vocab_seed=seed)
    accs, chances = [], []
    for _ in range(batches):
        b = next(it)
        ids, crop = b["token_ids"].to(device), b["word_crop"].to(device)
        text = encoder.text_embed(encoder(ids), ids)
        accs.append(float(retrieval_accuracy(text, encoder.image_embed(crop), ids)))
        same = (ids[:, None, :] == ids[None, :, :]).all(-1).float()  # (B, B): same string
        chances.append(float(same.mean()))
    encoder.train(was_training)
    return float(np.mean(accs)), float(np.mean(chances))


def pretrain_encoder(cfg: DreamTextConfig, out: str | Path | None = None, progress: bool = True) -> dict:
    """Pre-train ``TextEncoder(cfg)`` for ``cfg.pretrain.steps`` steps; save it to ``out`` (safetensors).

    Returns ``{"out", "steps", "train_retrieval_acc", "eval_retrieval_acc", "chance", "seconds"}``
    (``chance``: what retrieval by a blind scorer reaches on the same held-out batches).
    Metrics go to ``metrics.jsonl`` beside the output file.
    """
    from safetensors.torch import save

    from ..model.text_encoder import TextEncoder

    p = cfg.pretrain
    out = Path(out or p.out)
    torch.manual_seed(cfg.train.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    encoder = TextEncoder(cfg).to(device).train()
    opt = torch.optim.AdamW(encoder.parameters(), lr=p.lr, weight_decay=cfg.train.weight_decay)
    logger = MetricsLogger(out.parent, tensorboard=True)
    it = _batches(cfg, cfg.train.seed, 0, p.batch_size)
    recent: list[float] = []

    def step_fn(step: int) -> dict:
        nonlocal recent
        for g in opt.param_groups:
            g["lr"] = lr_at(step, p.lr, p.warmup_steps, p.steps, cfg.train.lr_schedule)
        b = next(it)
        losses = encoder.pretrain_loss({"token_ids": b["token_ids"].to(device), "word_crop": b["word_crop"].to(device)})
        check_finite({"loss": losses["loss"]}, step + 1)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), cfg.train.grad_clip)
        opt.step()
        recent = (recent + [float(losses["retrieval_acc"])])[-20:]
        return {k: float(v.detach()) for k, v in losses.items()} | {"lr": opt.param_groups[0]["lr"]}

    # The encoder is written once, at the end: no checkpoints, and signals keep their usual effect.
    run = run_steps(0, p.steps, step_fn, log_every=p.log_every, on_log=logger.log, progress=progress,
                    desc="pretrain-encoder", stoppable=False,
                    postfix=lambda r: {"loss": f"{r['loss']:.3f}", "acc": f"{np.mean(recent):.2f}"})
    eval_acc, chance = evaluate_retrieval(encoder, cfg, p.eval_batches, p.batch_size, cfg.train.seed)
    logger.log(p.steps, {"eval_retrieval_acc": eval_acc, "eval_chance": chance})
    logger.close()
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    atomic_write_bytes(out, save(state, metadata={"format": "dreamtext.text_encoder"}))
    atomic_write_text(out.with_suffix(".json"), cfg.to_json())
    return {
        "out": str(out), "steps": p.steps, "train_retrieval_acc": float(np.mean(recent)) if recent else 0.0,
        "eval_retrieval_acc": eval_acc, "chance": chance, "seconds": run.seconds,
    }


def load_encoder_weights(text_encoder: torch.nn.Module, path: str | Path) -> None:
    """Load a ``pretrain_encoder`` file (or a directory holding ``text_encoder.safetensors``) into ψ/ξ.

    Every tensor must match by name and shape: an encoder pre-trained with
    other ``text.*`` settings raises :class:`CheckpointError` naming the first mismatch.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        path = path / "text_encoder.safetensors"
    if not path.is_file():
        raise CheckpointError(f"pre-trained encoder {str(path)!r} does not exist (run `dreamtext pretrain-encoder`)")
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"cannot read pre-trained encoder {str(path)!r}: {e}") from None
    own = text_encoder.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"pre-trained encoder {str(path)!r} does not fit this config's text encoder: "
                              f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    for k, v in own.items():
        if v.shape != weights[k].shape:
            raise CheckpointError(f"pre-trained encoder {str(path)!r}: {k} has shape {tuple(weights[k].shape)}, "
                                  f"this config needs {tuple(v.shape)} (pre-train with the same text.* settings)")
    text_encoder.load_state_dict(weights)


