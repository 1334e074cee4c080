"""The numbers of the evaluation protocol (DESIGN §8).

Text: SeqAcc (exact match, case-insensitive as the reference, and
case-sensitive) and the normalised edit distance. Images: MSE, PSNR, SSIM on
[0, 1] intensities, over a region box or the whole image. Masks: mean IoU of
predicted vs ground-truth character masks. Perceptual: LPIPS (AlexNet) and
FID (Inception) — only when their weights are on the machine
(:func:`load_lpips`, :func:`load_inception`); nothing here ever substitutes a
made-up number for a missing network.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ImageError

PSNR_CAP_DB = 100.0  # PSNR of identical images (MSE = 0) is reported as this cap, not infinity

# ----------------------------------------------------------------------------- text


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each costing 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def seq_acc(pred: str, target: str, case_sensitive: bool = False) -> float:
    """1.0 when the reading equals the target exactly, else 0.0 (the reference ignores case). Spaces are
    ignored (a phrase is read as one line; the OCR's readings keep only the charset, which has no space)."""
    pred, target = pred.replace(" ", ""), target.replace(" ", "")
    if not case_sensitive:
        pred, target = pred.lower(), target.lower()
    return float(pred == target)


def ned(pred: str, target: str, case_sensitive: bool = False) -> float:
    """Normalised edit distance ``lev(pred, target) / max(|pred|, |target|)`` in [0, 1]; 0 is a perfect read
    (spaces ignored, as in :func:`seq_acc`)."""
    pred, target = pred.replace(" ", ""), target.replace(" ", "")
    if not case_sensitive:
        pred, target = pred.lower(), target.lower()
    longest = max(len(pred), len(target))
    return levenshtein(pred, target) / longest if longest else 0.0


# ----------------------------------------------------------------------------- images


def _as_unit_float(image: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float64)
    raise ImageError(f"{name} must be uint8 or float in [0, 1], got {arr.dtype}")


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_unit_float(a, "image"), _as_unit_float(b, "reference image")
    if x.shape != y.shape:
        raise ImageError(f"images to compare differ in shape: {x.shape} vs {y.shape}")
    if x.size == 0:
        raise ImageError("cannot compare empty images")
    return x, y


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error on [0, 1] intensities (uint8 input is divided by 255)."""
    x, y = _pair(a, b)
    return float(np.mean((x - y) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """``10·log10(1 / MSE)`` dB on [0, 1] intensities, capped at :data:`PSNR_CAP_DB`."""
    err = mse(a, b)
    return PSNR_CAP_DB if err <= 10 ** (-PSNR_CAP_DB / 10) else float(10.0 * math.log10(1.0 / err))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004, scikit-image, 7×7 uniform window, per channel then averaged).

    Regions smaller than 7 pixels on a side use the largest odd window that
    fits; below 3 pixels SSIM is undefined and NaN is returned.
    """
    from skimage.metrics import structural_similarity

    x, y = _pair(a, b)
    side = min(x.shape[0], x.shape[1])
    if side < 3:
        return float("nan")
    win = min(7, side if side % 2 else side - 1)
    channel_axis = -1 if x.ndim == 3 else None
    return float(structural_similarity(x, y, data_range=1.0, win_size=win, channel_axis=channel_axis))


def quad_box(quad: np.ndarray, image_hw: tuple[int, int]) -> tuple[slice, slice]:
    """Row and column slices of the quad's axis-aligned bounding box, clamped to the image."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    h, w = image_hw
    x0, y0 = int(np.clip(np.floor(q[:, 0].min()), 0, w - 1)), int(np.clip(np.floor(q[:, 1].min()), 0, h - 1))
    x1, y1 = int(np.clip(np.ceil(q[:, 0].max()), x0 + 1, w)), int(np.clip(np.ceil(q[:, 1].max()), y0 + 1, h))
    return slice(y0, y1), slice(x0, x1)


def image_metrics(output: np.ndarray, reference: np.ndarray, quad: np.ndarray) -> dict[str, float]:
    """SSIM / PSNR / MSE over the whole image and over the quad's bounding box (``*_region``)."""
    rows, cols = quad_box(quad, np.asarray(reference).shape[:2])
    out_r, ref_r = np.asarray(output)[rows, cols], np.asarray(reference)[rows, cols]
    return {
        "ssim": ssim(output, reference), "psnr": psnr(output, reference), "mse": mse(output, reference),
        "ssim_region": ssim(out_r, ref_r), "psnr_region": psnr(out_r, ref_r), "mse_region": mse(out_r, ref_r),
    }


# ----------------------------------------------------------------------------- character masks


def char_mask_miou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean over characters of ``|P_i ∩ G_i| / |P_i ∪ G_i|``; bool masks ``(n, H, W)``.

    A character whose predicted and true masks are both empty counts as 1
    (they agree). Different ``n`` or image sizes raise :class:`ImageError`.
    """
    p, g = np.asarray(pred).astype(bool), np.asarray(gt).astype(bool)
    if p.shape != g.shape or p.ndim != 3:
        raise ImageError(f"character masks must both be (n, H, W) of one shape, got {p.shape} and {g.shape}")
    if p.shape[0] == 0:
        raise ImageError("character masks hold no characters")
    inter = (p & g).reshape(len(p), -1).sum(1)
    union = (p | g).reshape(len(p), -1).sum(1)
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return float(iou.mean())


def even_slice_masks(quad: np.ndarray, n: int, image_hw: tuple[int, int]) -> np.ndarray:
    """The letter-blind baseline of :func:`char_mask_miou`: bool ``(n, H, W)``.

    The word's quad (TL, TR, BR, BL) cut into ``n`` equal slices along its
    reading direction, character i getting slice i: what attention that only
    learned "the i-th token sits i/n of the way along the box" would give.
    Every reported mask mIoU is shown beside this one on the same records.
    """
    import cv2

    if n < 1:
        raise ImageError(f"even_slice_masks needs at least one character, got {n}")
    h, w = image_hw
    unit = np.float32([[0, 0], [1, 0], [1, 1], [0, 1]])
    to_unit = cv2.getPerspectiveTransform(np.asarray(quad, np.float32).reshape(4, 2), unit)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    centres = np.stack([xs + 0.5, ys + 0.5], -1).reshape(-1, 1, 2)
    uv = cv2.perspectiveTransform(centres, to_unit).reshape(h, w, 2)  # (u, v) ∈ [0, 1]² inside the quad
    u, v = uv[..., 0], uv[..., 1]
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    slot = np.clip(np.floor(u * n), 0, n - 1).astype(np.int64)
    return inside[None] & (slot[None] == np.arange(n)[:, None, None])


# ----------------------------------------------------------------------------- LPIPS (AlexNet)

LPIPS_ENV = "DREAMTEXT_LPIPS_DIR"
LPIPS_TRUNK_FILES = ("alexnet.safetensors", "alexnet-owt-7be5be79.pth")  # torchvision's AlexNet, `features.*` keys
LPIPS_LINEAR_FILES = ("alex.safetensors", "alex.pth")  # the lpips package's v0.1 linear layers, `lin{k}.model.1.weight`
LPIPS_HOWTO = (f"set {LPIPS_ENV} to a folder holding torchvision's alexnet-owt-7be5be79.pth and lpips' "
               "v0.1 alex.pth (or their .safetensors conversions) to enable it")


def _load_state(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)  # tensors only, no code
    return state.get("state_dict", state) if isinstance(state, dict) else state


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    for n in names:
        if (folder / n).is_file():
            return folder / n
    return None


def _lpips_module():
    import torch
    from torch import nn

    class LPIPSAlex(nn.Module):
        """LPIPS v0.1 over AlexNet (Zhang et al. 2018): the ``lpips`` package's network, rebuilt without torchvision.

        Input: two float images ``(B, 3, H, W)`` in [-1, 1]; output ``(B,)`` distances.
        """

        channels = (64, 192, 384, 256, 256)

        def __init__(self):
            super().__init__()
            # torchvision AlexNet `features` (indices match its state-dict keys).
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
            )
            self.taps = (1, 4, 7, 9, 11)  # relu1..relu5
            self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.channels)
            self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

        def _feats(self, x):
            x = (x - self.shift) / self.scale
            out = []
            for i, layer in enumerate(self.features):
                x = layer(x)
                if i in self.taps:
                    out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))  # unit-normalise channels
            return out

        def forward(self, a, b):
            d = 0
            for lin, fa, fb in zip(self.lins, self._feats(a), self._feats(b)):
                d = d + lin((fa - fb) ** 2).mean(dim=(2, 3))  # spatial average of the weighted squared difference
            return d.view(-1)

    return LPIPSAlex


def load_lpips(folder: str | os.PathLike | None = None):
    """LPIPS-AlexNet from local weights, or ``(None, notice)`` when they are not there.

    ``folder`` defaults to ``$DREAMTEXT_LPIPS_DIR``. Returns ``(model, "")`` on
    success. Weights of the wrong shapes raise :class:`CheckpointError`.
    """
    folder = folder or os.environ.get(LPIPS_ENV)
    if not folder:
        return None, f"LPIPS skipped: no weights; {LPIPS_HOWTO}"
    folder = Path(folder)
    trunk, linear = _find(folder, LPIPS_TRUNK_FILES), _find(folder, LPIPS_LINEAR_FILES)
    if trunk is None or linear is None:
        return None, f"LPIPS skipped: {str(folder)!r} lacks {'the AlexNet trunk' if trunk is None else 'alex.pth'}; {LPIPS_HOWTO}"
    model = _lpips_module()()
    try:
        trunk_state = {k[len("features."):]: v for k, v in _load_state(trunk).items() if k.startswith("features.")}
        model.features.load_state_dict(trunk_state)
        lin_state = _load_state(linear)
        for k, lin in enumerate(model.lins):
            lin.weight.data.copy_(lin_state[f"lin{k}.model.1.weight"])
    except (KeyError, RuntimeError) as e:
        raise CheckpointError(f"LPIPS weights in {str(folder)!r} do not fit AlexNet-LPIPS v0.1: {str(e).splitlines()[0]}") from None
    return model.eval(), ""


def lpips_distance(model, a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS between two uint8 RGB images of one shape (smaller is more similar)."""
    import torch

    x, y = _pair(a, b)
    to_t = lambda z: torch.from_numpy(z * 2.0 - 1.0).float().permute(2, 0, 1)[None]  # noqa: E731
    with torch.no_grad():
        return float(model(to_t(x), to_t(y))[0])


# ----------------------------------------------------------------------------- FID (Inception)

FID_ENV = "DREAMTEXT_FID_INCEPTION"
FID_HOWTO = (f"set {FID_ENV} to NVIDIA's TorchScript inception-2015-12-05.pt (the FID Inception of "
             "StyleGAN2-ADA / clean-fid) to enable it")


def load_inception(path: str | os.PathLike | None = None):
    """The TorchScript FID Inception, or ``(None, notice)`` when it is not there.

    The network is called as ``net(uint8 (N, 3, H, W), return_features=True)``
    and returns ``(N, 2048)`` pool features (it resizes to 299 itself).
    """
    path = path or os.environ.get(FID_ENV)
    if not path:
        return None, f"FID skipped: no Inception weights; {FID_HOWTO}"
    if not Path(path).is_file():
        return None, f"FID skipped: {str(path)!r} does not exist; {FID_HOWTO}"
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.x, but it is the format the weights ship in
            warnings.simplefilter("ignore", DeprecationWarning)
            net = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as e:
        raise CheckpointError(f"{str(path)!r} is not a TorchScript Inception: {str(e).splitlines()[0]}") from None
    return net.eval(), ""


def inception_features(net, images: list[np.ndarray], batch: int = 16) -> np.ndarray:
    """``(N, D)`` float64 features of uint8 RGB images (each resized to 299×299 first)."""
    import torch
    from PIL import Image

    feats = []
    for i in range(0, len(images), batch):
        chunk = [np.asarray(Image.fromarray(im).resize((299, 299), Image.BICUBIC)) for im in images[i:i + batch]]
        x = torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2).contiguous()
        with torch.no_grad():
            feats.append(net(x, return_features=True).double().numpy())
    return np.concatenate(feats)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)`` — FID between two Gaussians (Heusel et al. 2017)."""
    from scipy import linalg

    diff = np.asarray(mu1) - np.asarray(mu2)
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # singular product (few samples): nudge the diagonals, as pytorch-fid does
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_features(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """FID between two sets of features ``(N, D)`` (each needs at least two rows)."""
    if len(feats_a) < 2 or len(feats_b) < 2:
        raise ImageError("FID needs at least two images per set")
    return frechet_distance(feats_a.mean(0), np.cov(feats_a, rowvar=False),
                            feats_b.mean(0), np.cov(feats_b, rowvar=False))
