"""The word verifier: a small CTC recogniser that scores how well a generated crop reads as its text.

Sampling several candidates per region and keeping the one the verifier reads
best (``sample.candidates``) turns an undertrained model's "right some of the
time" into "right more of the time" — best-of-N with a learned judge, as
DALL·E reranked with CLIP. It is not part of the DreamText paper; it is ours,
trained on the data engine's own crops (``dreamtext train-verifier``), and it
is *not* the recogniser the evaluation reads with (PP-OCR via rapidocr), so an
evaluation with candidates still measures the pictures, not the judge.

Network (CRNN, Shi et al. 2016): the crop's RGB plus the region mask,
(B, 4, 32, 128) → convolutions that halve the height four times and the width
twice → (B, C, 2, 32) → mean over height → a bidirectional GRU over the
32 columns → per-column logits over the 95 classes of the charset (0 = the CTC
blank, which is also the tokenizer's padding id, so token ids are CTC labels
as they are). 32 columns can align any word of up to 16 characters with
repeats (CTC needs 2L − 1 ≤ 32 for a word of L doubled letters).

Score of a crop for text t: log p(t | crop) from the CTC forward algorithm,
divided by len(t) (a per-character log-likelihood; candidates of one region
share t, so the division does not change which wins — it makes scores of
different words comparable for display).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..charset import VOCAB_SIZE, decode

VERIFIER_FORMAT = "dreamtext.verifier"
SHIPPED_VERIFIER_DIR = Path(__file__).resolve().parent.parent / "assets" / "verifier"


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class WordVerifier(nn.Module):
    """CRNN over (crop, region mask) → CTC logits (B, T, 95); ``cfg`` is a ``VerifierConfig``."""

    def __init__(self, cfg):
        super().__init__()
        c1, c2, c3, c4 = cfg.channels
        self.cfg = cfg
        self.features = nn.Sequential(
            _conv(4, c1), nn.MaxPool2d(2),              # (B, c1, 16, 64)
            _conv(c1, c2), nn.MaxPool2d(2),             # (B, c2, 8, 32)
            _conv(c2, c3), _conv(c3, c3), nn.MaxPool2d((2, 1)),  # (B, c3, 4, 32)
            _conv(c3, c4), nn.MaxPool2d((2, 1)),        # (B, c4, 2, 32)
        )
        self.rnn = nn.GRU(c4, cfg.hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * cfg.hidden, VOCAB_SIZE)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``image`` (B, 3, H, W) in [-1, 1], ``mask`` (B, 1, H, W) in {0, 1} → log-probs (B, T, 95)."""
        h = self.features(torch.cat([image, mask * 2.0 - 1.0], dim=1))  # (B, C, h, T)
        h = h.mean(dim=2).transpose(1, 2)  # (B, T, C): one feature per column
        h, _ = self.rnn(h)
        return F.log_softmax(self.head(h), dim=-1)


def ctc_log_likelihood(log_probs: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """log p(text | crop) per item: ``log_probs`` (B, T, 95), ``token_ids`` (B, L) padded with 0 → (B,)."""
    lengths = (token_ids > 0).sum(dim=1)
    targets = token_ids[token_ids > 0]  # concatenated labels, as ctc_loss takes them
    t = log_probs.shape[1]
    nll = F.ctc_loss(log_probs.transpose(0, 1).float(), targets, torch.full_like(lengths, t), lengths,
                     blank=0, reduction="none", zero_infinity=False)
    return -nll


def ctc_logp_per_char(log_probs: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """log p(text | crop) / len(text) per item (B,): the verifier's score, and minus its training loss."""
    return ctc_log_likelihood(log_probs, token_ids) / (token_ids > 0).sum(dim=1)


def greedy_readings(log_probs: torch.Tensor) -> list[str]:
    """Best path decoding: per-column argmax, repeats merged, blanks dropped."""
    out = []
    for path in log_probs.argmax(dim=-1).cpu().numpy():
        ids = [int(k) for i, k in enumerate(path) if k != 0 and (i == 0 or k != path[i - 1])]
        out.append(decode(np.asarray(ids, np.int64)))
    return out


@dataclass
class VerifierScores:
    """Per crop: ``logp_per_char`` (log p(text | crop) / len(text)) and the verifier's own ``reading``."""

    logp_per_char: np.ndarray  # (B,) float64
    readings: list[str]


@torch.no_grad()
def score_crops(verifier: WordVerifier, crops: np.ndarray, masks: np.ndarray, texts: list[str],
                max_len: int) -> VerifierScores:
    """``crops`` uint8 (B, H, W, 3), ``masks`` (B, H, W) region masks, one text each → their scores."""
    from ..charset import encode_batch
    from ..pixels import to_model_range

    was_training = verifier.training
    verifier.eval()
    device = next(verifier.parameters()).device
    image = torch.from_numpy(to_model_range(crops))  # (B, 3, H, W)
    mask = torch.from_numpy(np.asarray(masks, np.float32))[:, None]
    ids = torch.from_numpy(encode_batch(texts, max_len)).long()
    log_probs = verifier(image.to(device), mask.to(device))
    logp = ctc_logp_per_char(log_probs, ids.to(device)).cpu().double().numpy()
    verifier.train(was_training)
    return VerifierScores(logp_per_char=logp, readings=greedy_readings(log_probs))


def verifier_state(ckpt: Path) -> dict:
    """The ``state.json`` of checkpoint directory ``ckpt``; :class:`CheckpointError` unless it is a word verifier's."""
    from .checkpoint import kind_state

    return kind_state(ckpt, "verifier", "a word verifier", "train-verifier")


def load_verifier(path: str | Path | None = None):
    """(verifier in eval mode on the CPU, its DreamTextConfig) from a ``train-verifier`` run or checkpoint
    directory; None: the one shipped in ``dreamtext/assets/verifier``."""
    from .checkpoint import load_small_model

    return load_small_model(path, SHIPPED_VERIFIER_DIR, lambda cfg: WordVerifier(cfg.verifier), verifier_state,
                            f"no shipped verifier is present in {SHIPPED_VERIFIER_DIR}; train one with "
                            "`dreamtext train-verifier` and pass its directory as the verifier")
