"""The sections of the configuration tree (``DreamTextConfig``'s fields, dreamtext.config) and the names each
string setting may take. Kept apart from the tree itself, its presets and its loading so that both stay short;
import them from :mod:`dreamtext.config`, which re-exports every one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The values of SampleConfig.blend, .sampler and .mask_rule (the CLI, the web page and the pipeline check them).
BLEND_MODES = ("feather", "poisson", "inpaint", "recolor", "auto")  # dreamtext.paste.paste_back; "auto": the pipeline
# The samplers (dreamtext.diffusion.noise.SCHEDULERS builds each): "euler-edm" is the released DreamText/UDiffText
# sampler (sgm's EulerEDMSampler over LDM's discretisation), the sd2 preset's default.
SAMPLERS = ("ddim", "euler", "dpm++", "euler-edm")
MASK_RULES = ("attention", "strokes")  # dreamtext.char_masks.refine_to_strokes for "strokes"
# The loss forms (dreamtext.train.losses: one implementation each) and the §5 supervision modes.
MASK_FORMS = ("paper", "code")
ATTN_FORMS = ("mse", "max_contrast", "ce")
ALIGN_FORMS = ("cosine", "infonce")
SUPERVISION_MODES = ("none", "gt", "balanced")
# sample.upscale: how a region larger than the model's window gets its detail back (dreamtext.model.refiner)
UPSCALE_MODES = ("bilinear", "unsharp", "matte", "transfer", "refiner")


@dataclass
class TextEncoderConfig:
    """ψ (character embedding + sinusoidal positions + transformer) and ξ (ViT over the word crop)."""

    dim: int = 256  # d: width of ψ's output, the UNet's cross-attention context width
    layers: int = 4
    heads: int = 4
    proj_dim: int = 128  # width of the pooled projections H_t and H_v (alignment space)
    vis_size: tuple[int, int] = (32, 128)  # (H, W) of the grayscale word crop ξ reads
    vis_patch: int = 8
    vis_dim: int = 192
    vis_layers: int = 4
    vis_heads: int = 4
    init_temperature: float = 0.07  # learnable CLIP temperature, stored as log(1/τ)
    # The shape of ψ's transformer layers. Ours (the defaults): pre-norm, GELU, a 4·dim feed-forward and a final
    # LayerNorm. The released LabelEncoder (a converted model, dreamtext.model.convert_released): PyTorch's
    # default layer, post-norm, ReLU, ff_dim 2048, no final norm.
    ff_dim: int = 0  # width of each layer's feed-forward; 0: 4·dim
    activation: str = "gelu"  # "gelu" | "relu"
    norm_first: bool = True  # pre-norm layers (False: post-norm)
    final_norm: bool = True  # a LayerNorm over the last layer's output
    # Which of ψ's parameters the diffusion training updates: "all", "none", or
    # "last:N" (the last N transformer layers and the heads, the paper's figure).
    train_during_diffusion: str = "all"


@dataclass
class UNetConfig:
    """The denoiser: diffusers' UNet2DConditionModel with character cross-attention."""

    block_out_channels: tuple[int, ...] = (32, 64, 128)
    down_block_types: tuple[str, ...] = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
    up_block_types: tuple[str, ...] = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")
    layers_per_block: int = 1
    attention_heads: int = 4  # number of heads (diffusers calls this attention_head_dim: DESIGN §11)
    # Skip self-attention inside the transformer blocks (it costs 3× a step at 16×64, DESIGN §11).
    only_cross_attention: bool = True
    mask_padding: bool = True  # mask padding slots out of the cross-attention softmax (§2)
    # sd2 preset: a local diffusers-format SD2-inpainting directory (unet/, vae/, scheduler/).
    base_path: str | None = None
    # What the diffusion training updates in the UNet: "all" or "char_attn" (every transformer block's
    # cross-attention attn2 and its norm2; unet.char_attn_parameters).
    trainable: str = "all"
    # Channels per attention head when the UNet is built from this config (0: `attention_heads` heads in every
    # block). SD2 / DreamText: 64, i.e. 5, 10, 20, 20 heads at widths 320, 640, 1280, 1280.
    head_channels: int = 0
    linear_projection: bool = False  # the transformer blocks' proj_in / proj_out as Linear layers (SD2) not 1×1 convs


@dataclass
class VAEConfig:
    """The latent presets' AutoencoderKL when it is built from the config (a converted model, or any latent model
    without ``unet.base_path``); with a base path the base directory's ``vae/`` decides. Defaults: SD's VAE."""

    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    norm_groups: int = 32
    scaling_factor: float = 0.18215  # latents = scaling_factor · posterior mean


@dataclass
class DiffusionConfig:
    """The noise process (diffusers scheduler config keys)."""

    num_train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    prediction_type: str = "epsilon"


@dataclass
class LossConfig:
    """DESIGN §4 and §5."""

    alpha: float = 0.01  # weight of L_attn
    beta: float = 0.001  # weight of L_align + L_id
    gamma: float = 1.0  # L_mask up-weighting inside the characters (paper form)
    mask_form: str = "paper"  # "paper": ‖(1+γM)⊙(ε−ε̂)‖² ; "code": MSE + 0.01·per-character masked MSE
    attn_form: str = "mse"  # "mse" (paper) or "max_contrast" (UDiffText / released code)
    align_form: str = "cosine"  # "cosine" (paper) or "infonce" (released code)
    supervision: str = "balanced"  # "none" | "gt" | "balanced"  (§5 ablation)
    k_gt: int = 25_000  # steps that use ground-truth character masks in "balanced"
    s_min: int = 16  # smallest attention-map side used for the masks (§3)
    mask_res: tuple[int, int] | None = None  # common resolution of §3 (None: the largest map)
    cond_dropout: float = 0.1  # probability of dropping the whole text condition (CFG)
    # The recognition loss (ours, off in the paper's configuration; dreamtext.ocr_loss): weight of the CTC loss
    # of a frozen word recogniser reading the one-step estimate x̂0 of each training sample against its text.
    ocr: float = 0.0
    # How the noise level weights it: "alpha_bar" (× ᾱ_t: x̂0 is a blur at high noise) or "threshold" (1 for
    # t < ocr_t_max, else 0).
    ocr_weighting: str = "alpha_bar"
    ocr_t_max: int = 400
    # The frozen recogniser: a train-verifier run or checkpoint directory; None: the shipped word verifier.
    ocr_recognizer: str | None = None


@dataclass
class DataConfig:
    """Where training samples come from and how they are cut (DESIGN §6)."""

    source: str = "synth"  # "synth", "shards:DIR", "synthtext:PATH", "textseg:DIR", "icdar13:DIR", "laion_ocr:DIR"
    min_word_area_frac: float = 0.04  # crop around words covering less than this fraction (§6)
    context_scale: float = 1.0  # the window is at least this many times the word's size
    num_workers: int = 0
    words: str = "english+random"  # word sources of the generator: "english", "random", or both
    # > 0: the generator favours English words with rare letters (q, j, x, z, ...), which the shipped model
    # writes about twice as badly as common ones (words.sample_word: 2 lifts q, j, x, z from 3.7 % of the
    # letters to 5.9 %). The training split only: the benchmark never changes with it.
    glyph_balance: float = 0.0
    # > 0: in training, the region the model fills (mask, glyph prior) is the word's quad grown by up to this
    # fraction of its width (half as much of its height), at random (transforms.loosen_quad): boxes that do
    # not fit their word, as at inference. 0 (default): the ink box, as the benchmark gives it.
    box_slack: float = 0.0
    # > 0: this fraction of training samples are edit pairs (synthetic sources only): the model sees a scene
    # with one word, masked in that word's box, and must write another word of the same length there, the
    # target being the same scene drawn with the other word (render.SynthGenerator.sample_pair). The edit
    # task as the benchmark poses it, which plain reconstruction never trains. 0 (default): off.
    edit_pairs: float = 0.0
    # The style reference (DESIGN §13, with style_ref on). Edit pairs: the fraction whose reference is blanked
    # (the model also learns to write without one); plain samples: the fraction whose reference is their own
    # word (the reconstruction-style pairs; the rest have none, the paper's protocol).
    style_ref_drop: float = 0.2
    style_ref_same: float = 0.1
    # Edit pairs: the target word's length differs from the source's by up to this many characters (0: the
    # same length), and never stretches the letters by more than 1.5× (render.pair_length).
    pair_length_delta: int = 0
    # Edit pairs: the fraction whose source scene holds no text (the model writes onto bare background).
    pair_blank_source: float = 0.0
    # Font size range (scene pixels) of the synthetic generator; its scenes are a few times the text's
    # size, so this sets their resolution. (18, 36) gives ~23-px letters in the tiny 32×128 window.
    synth_font_px: tuple[int, int] = (18, 36)


@dataclass
class TrainConfig:
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 200
    lr_schedule: str = "cosine"  # "constant" or "cosine" after warm-up
    max_steps: int = 10_000
    ema_decay: float = 0.999
    bf16: bool = True  # autocast where the hardware supports it
    # On a CUDA GPU, float32 matmuls and convolutions may use TF32 tensor cores (10-bit mantissa, as diffusers'
    # training scripts' --allow_tf32): several times the float32 rate once a batch is large enough to be
    # compute-bound. No effect on a CPU.
    tf32: bool = True
    # torch.compile the UNet (in place: its weights keep their names) for training. The first step pays the
    # compilation (~3 min for the tiny UNet on a 2-core CPU), every later one runs fused kernels: 1.27× (bf16)
    # and 1.14× (float32) on that CPU (BENCHMARKS.md, "Compiled training step"). A backend that fails falls back
    # to eager with a warning, so a run is never lost to it. Probes and sample grids run eagerly (other shapes,
    # no autograd).
    compile: bool = False
    compile_backend: str = "inductor"  # any torch.compile backend: "inductor", "aot_eager" (tests), ...
    # DDP's find_unused_parameters: the model freezes everything the objective does not use
    # (DreamTextModel.configure_trainable), so every trainable parameter gets a gradient each step and DDP can skip
    # its search of the autograd graph; set true only for a custom objective that leaves some unused.
    ddp_find_unused: bool = False
    grad_clip: float = 1.0
    # The UNet's input convolution (conv_in) learns at lr × this: a fine-tune that adds input channels (the style
    # reference, DESIGN §13) starts them at zero and needs them to move faster than the rest, which a small lr
    # keeps near the start (1.0: one learning rate for everything).
    conv_in_lr_scale: float = 1.0
    ckpt_every: int = 250
    keep_ckpts: int = 3
    sample_every: int = 500
    log_every: int = 10
    seed: int = 0
    out_dir: str = "runs/tiny"
    encoder_ckpt: str | None = None  # a pre-trained text encoder (dreamtext pretrain-encoder)
    # Fine-tuning: start a fresh run from these weights (a run, checkpoint or pipeline directory, or "shipped"
    # for the model inside the package; EMA weights when present). Optimiser, EMA and step start afresh; the
    # model settings must build the same network. Ignored when resuming (the checkpoint has the weights).
    init_from: str | None = None
    # The benchmark probe: every probe_every steps (0: never) the EMA model runs the evaluation protocol on the
    # first probe_size records of the bench split, recon and edit, with probe_steps sampling steps; SeqAcc and
    # mask mIoU go to metrics.jsonl as probe/* (the training curve), each report to probes/step_<n>/.
    probe_every: int = 0
    probe_size: int = 32
    probe_steps: int = 10


@dataclass
class PretrainConfig:
    """Text-encoder pre-training (``dreamtext pretrain-encoder``, DESIGN §2): words rendered in many fonts."""

    steps: int = 3000
    batch_size: int = 64  # also the retrieval pool: text→image top-1 over this many words (chance 1/batch_size)
    lr: float = 3e-4
    warmup_steps: int = 100
    log_every: int = 25
    out: str = "runs/encoder/text_encoder.safetensors"  # what train.encoder_ckpt then points at
    eval_batches: int = 4  # held-out batches for the reported retrieval accuracy
    # 0: an endless stream of words; N > 0: a fixed pool of N words (drawn once from the seed), each
    # rendered afresh every time in a random font — a quick check that the encoder learns at all.
    vocab: int = 0


@dataclass
class VerifierConfig:
    """The word verifier (``dreamtext train-verifier``, dreamtext.verifier): a CTC recogniser that picks the best
    of ``sample.candidates`` samples per region. Reads crops of the model's ``image_size``."""

    channels: tuple[int, int, int, int] = (24, 48, 96, 128)  # conv widths at 1/2, 1/4, 1/4 and 1/8 of the height
    hidden: int = 96  # GRU units per direction
    steps: int = 3500
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 200
    log_every: int = 50
    ckpt_every: int = 500
    seed: int = 11  # the data engine's seed for its training crops (the bench split has its own)
    # Augmentation: generated crops are softer than rendered ones, so the verifier learns to read blurred,
    # noisy and down-sampled words too (each with this probability per crop).
    degrade_prob: float = 0.5
    eval_records: int = 256  # bench records read at the end (ground-truth crops) for the reported accuracy


@dataclass
class RefinerConfig:
    """The detail refiner (``dreamtext train-refiner``, dreamtext.model.refiner): a small fully-convolutional net
    that puts back, at the photo's own resolution, the detail lost when the model's window is enlarged."""

    channels: int = 32  # width at half the region's resolution (after a 2× pixel-unshuffle)
    dilations: tuple[int, ...] = (1, 2, 4, 8, 4, 2, 1)  # one 3×3 residual block each: ~90 px receptive field
    steps: int = 1500
    batch_size: int = 16  # crops per step (pairs_per_step pairs, the rest more crops of the same pairs)
    pairs_per_step: int = 4
    crop: int = 96  # square training crop, region pixels
    lr: float = 2e-3
    warmup_steps: int = 50
    grad_weight: float = 1.0  # weight of the Sobel-gradient L1 beside the pixel L1
    log_every: int = 25
    ckpt_every: int = 250
    seed: int = 28  # the data engine's seed for its training pairs (the paired split has its own)
    # Augmentation of the simulated base output (the ground truth's own model-window crop): a generated window
    # is a little softer and noisier than a rendered one.
    blur_max: float = 0.8  # Gaussian σ in window pixels, drawn from [0, blur_max] for half of the crops
    noise_max: float = 4.0  # Gaussian noise σ in 0–255 levels, drawn from [0, noise_max]
    ref_prob: float = 0.8  # share of crops whose guide shows the old word (else the region is masked in it)
    eval_pairs: int = 48  # held-out paired-split records scored at the end (sharpness, L1 against the truth)


@dataclass
class SampleConfig:
    sampler: str = "ddim"  # one of SAMPLERS
    steps: int = 50
    guidance: float = 3.0
    eta: float = 0.0  # 0: deterministic
    # Restart sampling (Xu et al. 2023, "Restart Sampling for Improving Generative Processes"): after the
    # sampler reaches t = 0, noise the result again to the timestep `restart_strength` of the way up the
    # schedule with fresh noise and run the sampler down again (img2img's `strength`: int(steps · strength)
    # steps), `restarts` times. Fresh noise drowns the error the first pass accumulated (an undertrained model
    # lets part of z_T through into x̂0 at high noise, which a single pass keeps to the end); each restart
    # costs int(steps · strength) more UNet calls.
    restarts: int = 0
    restart_strength: float = 0.6
    # Fraction of the final sampling steps whose cross-attention is averaged into the
    # §3 character masks returned beside an edit (at least one step).
    attn_frac: float = 0.3
    # Paste-back: width of the feather band around each region, as a fraction of the
    # region's height (pixels farther out than the band stay byte-identical).
    feather: float = 0.15
    # Paste-back colour: "feather" pastes the crop as generated; "poisson" first shifts its colours to meet
    # the photograph's at the band's outer edge, keeping its gradients (Pérez et al. 2003); "inpaint" keeps
    # only the crop's letters' shapes, drawn in the old letters' colour over the photograph's background with
    # its old letters inpainted away (dreamtext.paste.letters_over_scene); "recolor" keeps the crop's whole
    # picture, shifted to the old letters' colour and the photograph's background colour (recolor_to_scene);
    # "auto" recolors a region unless the word verifier reads the new word there worse than in the feathered
    # paste by more than `blend_margin` nats a character (then it is feathered), and only where the edit shows
    # the model the old word (never in the paper's reconstruction protocol, whose region is hidden).
    blend: str = "feather"
    blend_margin: float = 0.05
    # Character masks returned beside an edit: "attention" (§3, as training uses them) or "strokes" (the
    # §3 masks narrowed to the generated crop's text pixels; dreamtext.char_masks.refine_to_strokes).
    mask_rule: str = "attention"
    # Regions whose text line is tilted by more than this many degrees are rotated upright
    # before the context window is cut (and rotated back when pasted); 0 never rotates.
    rectify_deg: float = 3.0
    # Best of N: sample this many candidates per region (each its own noise; candidate 0 is what one sample
    # gives) and keep the one the word verifier reads best (dreamtext.verifier). N times the sampling work.
    candidates: int = 1
    verifier: str | None = None  # a train-verifier run or checkpoint directory; None: the shipped verifier
    # A model with the style reference (style_ref, DESIGN §13) sees each region's original pixels — the old
    # word — as the reference of an edit; False samples without it (the region masked only, as the paper).
    # No effect on a model without the input.
    use_style_ref: bool = True
    # Detail at the photo's resolution (docs/editing.md): a region more than `upscale_min`× larger than its model
    # window is enlarged bilinearly ("bilinear", the paper's paste-back), then sharpened with an unsharp mask
    # scaled to the enlargement ("unsharp"), its letters' edges steepened to the old word's edge width
    # ("matte"), that and the photo's fine detail where old and new words agree ("transfer"), or given its
    # detail back by the learned refiner ("refiner": the upsampled crop, the photo around it and — with the
    # style reference — the old word at full resolution). dreamtext.edit.detail has each.
    upscale: str = "bilinear"  # the refiner is sharper but costs legibility (BENCHMARKS.md): not the default
    upscale_min: float = 1.25
    refiner: str | None = None  # a train-refiner run or checkpoint directory; None: the shipped refiner
