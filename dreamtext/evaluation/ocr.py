"""Reading words back: the OCR behind SeqAcc and NED (DESIGN §8, §11).

A recogniser turns rectified word crops (uint8 RGB ``(h, w, 3)``) into
strings. The evaluation only talks to the small :class:`Recognizer` protocol,
so another recogniser plugs in without touching the protocol code:

- ``rapidocr`` (default): the PP-OCR recogniser that the
  ``rapidocr-onnxruntime`` wheel ships (Chinese + English). It sometimes adds
  a junk leading character, so readings keep only characters of our charset
  (:func:`dreamtext.charset.keep_known`).
- ``parseq-onnx:PATH``: PARSeq (the reference's recogniser) exported to ONNX,
  read from a local file: input ``(1, 3, 32, 128)`` float in [-1, 1], output
  logits ``(1, T, 95)`` over ``[EOS] + PARSEQ_CHARSET`` (greedy decoding,
  stop at EOS), the layout of PARSeq's own ``torch.onnx`` export.
- ``python:MODULE:FACTORY``: any callable returning an object with
  ``name`` and ``read(crops)``.

:func:`make_recognizer` turns one of these specs into a recogniser.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from ..charset import keep_known
from ..errors import ConfigError, ImageError

# PARSeq's 94-character output alphabet in its own order (strhub "94_full");
# logits index 0 is the end-of-sequence token.
PARSEQ_CHARSET = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)


@runtime_checkable
class Recognizer(Protocol):
    """Anything that reads word crops. ``name`` goes into results.json."""

    name: str

    def read(self, crops: list[np.ndarray]) -> list[str]:
        """One string per uint8 RGB crop ``(h, w, 3)``, restricted to the charset."""
        ...


def check_crop(crop: np.ndarray, index: int = 0) -> np.ndarray:
    """A crop as contiguous uint8 RGB ``(h, w, 3)``; anything else is an :class:`ImageError`."""
    arr = np.asarray(crop)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ImageError(f"OCR crop {index} must be a uint8 (h, w, 3) image of at least 2×2, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ImageError(f"OCR crop {index} must be uint8, got {arr.dtype}")
    return np.ascontiguousarray(arr)


class RapidOCRRecognizer:
    """PP-OCR text recognition from ``rapidocr-onnxruntime`` (detection and angle classifier off).

    About 8–11 ms per crop on this machine's CPU (DESIGN §11).
    """

    name = "rapidocr-ppocr-rec"

    def __init__(self, threads: int = 1) -> None:
        # One onnxruntime thread: on this 2-core machine, shared with PyTorch during an evaluation,
        # it reads a crop twice as fast as the default thread pool (82 vs 165 ms under load).
        self.threads = threads
        self._engine = None

    def _get_engine(self):
        if self._engine is None:  # loading the ONNX sessions takes ~1 s: do it once, on first use
            from rapidocr_onnxruntime import RapidOCR

            self._engine = RapidOCR(intra_op_num_threads=self.threads, inter_op_num_threads=1)
        return self._engine

    def read(self, crops: list[np.ndarray]) -> list[str]:
        engine = self._get_engine()
        out = []
        for i, crop in enumerate(crops):
            bgr = np.ascontiguousarray(check_crop(crop, i)[:, :, ::-1])  # RapidOCR expects OpenCV's BGR
            result, _elapsed = engine(bgr, use_det=False, use_cls=False, use_rec=True)
            text = result[0][0] if result else ""
            out.append(keep_known(str(text)))
        return out


class ParseqOnnxRecognizer:
    """PARSeq exported to ONNX, from a local file (the reference's recogniser, DESIGN §8)."""

    name = "parseq-onnx"
    input_hw = (32, 128)

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"PARSeq ONNX file {str(path)!r} does not exist")
        import onnxruntime

        self._session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.name = f"parseq-onnx:{path.name}"

    @classmethod
    def preprocess(cls, crop: np.ndarray) -> np.ndarray:
        """uint8 RGB crop → float32 ``(1, 3, 32, 128)`` in [-1, 1] (bicubic resize, as PARSeq's transform)."""
        from PIL import Image

        h, w = cls.input_hw
        img = Image.fromarray(crop).resize((w, h), Image.BICUBIC)
        x = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
        return x.transpose(2, 0, 1)[None]

    @staticmethod
    def decode(logits: np.ndarray) -> str:
        """Greedy decoding of ``(T, 95)`` logits over ``[EOS] + PARSEQ_CHARSET``: stop at the first EOS."""
        ids = np.asarray(logits).argmax(-1).reshape(-1)
        chars = []
        for i in ids.tolist():
            if i == 0:
                break
            if i <= len(PARSEQ_CHARSET):  # ids past the alphabet (BOS/PAD in some exports) are dropped
                chars.append(PARSEQ_CHARSET[i - 1])
        return "".join(chars)

    def read(self, crops: list[np.ndarray]) -> list[str]:
        out = []
        for i, crop in enumerate(crops):
            logits = self._session.run(None, {self._input: self.preprocess(check_crop(crop, i))})[0]
            out.append(keep_known(self.decode(logits[0])))
        return out


def _load_python_factory(target: str) -> Callable[[], Recognizer]:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"recogniser spec 'python:{target}' must be 'python:MODULE:FACTORY'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"cannot import recogniser module {module_name!r}: {e}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"{module_name!r} has no callable {attr!r}")
    return factory


def make_recognizer(spec: str = "rapidocr") -> Recognizer:
    """``"rapidocr"`` | ``"parseq-onnx:PATH"`` | ``"python:MODULE:FACTORY"`` → a :class:`Recognizer`."""
    if spec == "rapidocr":
        return RapidOCRRecognizer()
    kind, _, rest = spec.partition(":")
    if kind == "parseq-onnx" and rest:
        return ParseqOnnxRecognizer(rest)
    if kind == "python" and rest:
        rec = _load_python_factory(rest)()
        if not isinstance(rec, Recognizer):
            raise ConfigError(f"recogniser from {spec!r} has no 'name' and 'read(crops)'")
        return rec
    raise ConfigError(f"unknown recogniser {spec!r}; use 'rapidocr', 'parseq-onnx:PATH' or 'python:MODULE:FACTORY'")


def rectify_quad(image: np.ndarray, quad: np.ndarray, height: int = 32) -> np.ndarray:
    """The word inside ``quad`` warped flat: uint8 ``(height, w, 3)``, ``w`` from the quad's aspect ratio.

    ``quad`` is ``(4, 2)`` in reading order (TL, TR, BR, BL). The width keeps
    the mean of the top/bottom side lengths over the mean of the left/right
    side lengths, so a rotated or perspective word reads as a straight line.
    """
    import cv2

    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    top, bottom = np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3])
    left, right = np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1])
    side = max((left + right) / 2.0, 1.0)
    width = int(np.clip(round(height * ((top + bottom) / 2.0) / side), 2, 32 * height))
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(q, dst)
    return cv2.warpPerspective(np.ascontiguousarray(image), matrix, (width, height),
                               flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


# ----------------------------------------------------------------------------- the recogniser's own accuracy

CLEAN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def system_fonts(root: str | Path = "/usr/share/fonts") -> list[Path]:
    """Upright text fonts under ``root`` (TrueType/OpenType; math, symbol and dingbat fonts left out)."""
    skip = ("math", "symbol", "dingbat", "oblique", "italic", "ita.", "z003", "d050000l", "standardsymbols")
    fonts = [p for ext in ("*.ttf", "*.otf") for p in Path(root).rglob(ext)
             if not any(s in p.name.lower() for s in skip)]
    return sorted(fonts)


def render_clean_word(text: str, font_path: str | Path, hw: tuple[int, int]) -> np.ndarray:
    """``text`` in black on white, centred and fitted into ``hw`` with a 10% margin: uint8 ``(h, w, 3)``."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = hw
    size = h
    while True:  # shrink until the word fits the box (at most ~h steps)
        font = ImageFont.truetype(str(font_path), size)
        x0, y0, x1, y1 = font.getbbox(text)
        if (x1 - x0 <= 0.9 * w and y1 - y0 <= 0.8 * h) or size <= 6:
            break
        size -= 1
    img = Image.new("RGB", (w, h), "white")
    ImageDraw.Draw(img).text(((w - (x1 - x0)) / 2 - x0, (h - (y1 - y0)) / 2 - y0), text, font=font, fill="black")
    return np.asarray(img)


def clean_render_accuracy(recognizer: Recognizer, n: int, hw: tuple[int, int], seed: int = 0,
                          fonts: list[Path] | None = None) -> dict:
    """The recogniser's SeqAcc / NED on ``n`` clean renders of random mixed-case alphanumeric words.

    Word lengths 3–10, one font per word drawn from :func:`system_fonts`; the
    same ``seed`` gives the same words and fonts. This is the best the OCR can
    do on perfect text: the ceiling of any model's score at that size.
    """
    from .metrics import ned, seq_acc

    fonts = fonts if fonts is not None else system_fonts()
    if not fonts:
        raise ConfigError("no fonts found under /usr/share/fonts to render words with")
    rng = np.random.default_rng(seed)
    words, crops = [], []
    for _ in range(n):
        word = "".join(rng.choice(list(CLEAN_ALPHABET), size=int(rng.integers(3, 11))))
        words.append(word)
        crops.append(render_clean_word(word, fonts[int(rng.integers(len(fonts)))], hw))
    reads = recognizer.read(crops)
    return {
        "n": n, "hw": list(hw), "seed": seed, "recognizer": recognizer.name,
        "seq_acc_ci": float(np.mean([seq_acc(r, t) for r, t in zip(reads, words)])),
        "seq_acc_cs": float(np.mean([seq_acc(r, t, case_sensitive=True) for r, t in zip(reads, words)])),
        "ned": float(np.mean([ned(r, t) for r, t in zip(reads, words)])),
        "examples": [{"text": t, "read": r} for t, r in zip(words[:8], reads[:8])],
    }
