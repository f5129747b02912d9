"""Small image, audio and text encoders shared by the chapters.

Every encoder maps one modality of a batch to a feature matrix ``(B, output_dim)``
and exposes ``output_dim``, so that a fusion module (:mod:`mmedu.fusion`) can be
built from the encoders' sizes.  They are deliberately tiny (a few conv/linear
layers, tens of thousands of parameters) so that a chapter trains several models
in seconds on a laptop CPU; they are baselines to fuse, not state of the art.

All encoders end with a *linear* layer: their features are signed and unconstrained.
An earlier version ended with a ReLU, which at small ``output_dim`` left units that
are zero for every input (dead features that break standardisation) and made every
feature non-negative — a multiplicative fusion (chapter 2) cannot then flip the sign
of a product. Whatever sits on top (a linear head, an MLP, a fusion layer) supplies
the nonlinearity it needs.

==========================  =====================  ===========================
encoder                     input                  output
==========================  =====================  ===========================
:class:`ImageEncoder`       ``(B, 1, 28, 28)``     ``(B, output_dim)``
:class:`AudioEncoder`       ``(B, 40, 63)``        ``(B, output_dim)``
:class:`TextEncoder`        ``(B, L)`` int64 ids   ``(B, output_dim)``
:class:`BagOfWordsEncoder`  ``(B, V)`` counts      ``(B, output_dim)``
==========================  =====================  ===========================
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ._checks import as_tensor, check_choice, check_finite, check_ndim, check_positive_int

__all__ = ["ImageEncoder", "AudioEncoder", "TextEncoder", "BagOfWordsEncoder"]


def _check_float_input(x, name: str, ndim: int, tail: tuple[int, ...], doc: str, like: torch.Tensor) -> torch.Tensor:
    """Convert ``x`` to a finite float tensor of shape ``(B, *tail)`` on the module's device."""
    t = as_tensor(x, name, floating=True)
    check_ndim(t, name, ndim, doc)
    if tuple(t.shape[1:]) != tail:
        raise ValueError(f"{name}: expected shape {doc}, got {tuple(t.shape)}")
    check_finite(t, name)
    return t.to(device=like.device, dtype=like.dtype)


class ImageEncoder(nn.Module):
    """Two strided 3x3 convolutions and a linear layer: ``(B, 1, 28, 28) -> (B, output_dim)``.

    Layout: ``conv(1->c1, stride 2) -> ReLU -> conv(c1->c2, stride 2) -> ReLU ->
    flatten (c2*7*7) -> linear``.  Strided convolutions instead of pooling
    keep the cost low (about 70k multiply-adds per image with the defaults).

    Args:
        output_dim: size ``D`` of the feature vector.
        channels: ``(c1, c2)``, channels of the two convolutions.
        image_size: side of the square input image (28 for MNIST).
    """

    def __init__(self, output_dim: int = 64, channels: Sequence[int] = (8, 16), image_size: int = 28) -> None:
        super().__init__()
        self.output_dim = check_positive_int(output_dim, "output_dim")
        if len(channels) != 2:
            raise ValueError(f"channels: expected 2 channel counts (c1, c2), got {len(channels)}")
        c1, c2 = (check_positive_int(c, "channels") for c in channels)
        self.image_size = check_positive_int(image_size, "image_size", minimum=4)
        side = (self.image_size + 1) // 2
        side = (side + 1) // 2  # two stride-2 convolutions with padding 1
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.project = nn.Sequential(nn.Linear(c2 * side * side, self.output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(B, 1, H, W)`` float (pixel values, e.g. in [0, 1]) -> ``(B, output_dim)``."""
        s = self.image_size
        x = _check_float_input(x, "image", 4, (1, s, s), f"(B, 1, {s}, {s})", self.project[0].weight)
        return self.project(self.features(x))


class AudioEncoder(nn.Module):
    """1-D convolutions over time with mel bands as channels: ``(B, n_mels, T) -> (B, output_dim)``.

    Layout: ``BatchNorm1d(n_mels) -> conv1d(k=5, stride 2) -> ReLU -> conv1d(k=3,
    stride 2) -> ReLU -> [mean over time; max over time] -> linear``.

    The input batch norm standardises each mel band with statistics learned in
    training (log-mel values sit far from zero, on a scale set by the dB
    reference), as audio tagging networks commonly do.  Pooling over time makes
    the encoder accept any number of frames ``T >= 5``.

    Args:
        output_dim: size ``D`` of the feature vector.
        n_mels: number of mel bands (input channels).
        channels: channels of the two convolutions.
    """

    def __init__(self, output_dim: int = 64, n_mels: int = 40, channels: Sequence[int] = (32, 32)) -> None:
        super().__init__()
        self.output_dim = check_positive_int(output_dim, "output_dim")
        self.n_mels = check_positive_int(n_mels, "n_mels")
        if len(channels) != 2:
            raise ValueError(f"channels: expected 2 channel counts (c1, c2), got {len(channels)}")
        c1, c2 = (check_positive_int(c, "channels") for c in channels)
        self.norm = nn.BatchNorm1d(self.n_mels)
        self.features = nn.Sequential(
            nn.Conv1d(self.n_mels, c1, kernel_size=5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(c1, c2, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.project = nn.Sequential(nn.Linear(2 * c2, self.output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(B, n_mels, T)`` float log-mel spectrogram -> ``(B, output_dim)``."""
        t = as_tensor(x, "audio", floating=True)
        check_ndim(t, "audio", 3, f"(B, {self.n_mels}, T)")
        if t.shape[1] != self.n_mels:
            raise ValueError(f"audio: expected shape (B, {self.n_mels}, T) with {self.n_mels} mel bands, got {tuple(t.shape)}")
        if t.shape[2] < 1:
            raise ValueError(f"audio: expected at least 1 time frame, got shape {tuple(t.shape)}")
        check_finite(t, "audio")
        w = self.project[0].weight
        h = self.features(self.norm(t.to(device=w.device, dtype=w.dtype)))  # (B, c2, T')
        return self.project(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))


class TextEncoder(nn.Module):
    """Token ids -> embedding -> masked pooling -> linear: ``(B, L) int64 -> (B, output_dim)``.

    Id ``pad_id`` (0) marks padding: it is excluded from the pooling, so a
    caption's features do not depend on how much padding the batch needed.  A row
    made only of padding (a missing caption) pools to the zero vector.

    Args:
        vocab_size: number of token ids ``V`` (ids must lie in ``[0, V)``).
        output_dim: size ``D`` of the feature vector.
        embed_dim: size of the token embeddings.
        pooling: ``"mean"``, ``"max"`` or ``"meanmax"`` (both, concatenated).
        pad_id: the padding id (its embedding is fixed at zero).
    """

    def __init__(
        self,
        vocab_size: int,
        output_dim: int = 64,
        embed_dim: int = 32,
        pooling: str = "mean",
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size", minimum=2)
        self.output_dim = check_positive_int(output_dim, "output_dim")
        embed_dim = check_positive_int(embed_dim, "embed_dim")
        check_choice(pooling, "pooling", ("mean", "max", "meanmax"))
        self.pooling = pooling
        self.pad_id = check_positive_int(pad_id, "pad_id", minimum=0, maximum=self.vocab_size - 1)
        self.embedding = nn.Embedding(self.vocab_size, embed_dim, padding_idx=self.pad_id)
        pooled = 2 * embed_dim if pooling == "meanmax" else embed_dim
        self.project = nn.Sequential(nn.Linear(pooled, self.output_dim))

    def pool(self, ids: torch.Tensor) -> torch.Tensor:
        """Masked pooling of the token embeddings: ids ``(B, L)`` -> ``(B, embed_dim)`` (or ``2*embed_dim``)."""
        emb = self.embedding(ids)  # (B, L, E)
        mask = (ids != self.pad_id).unsqueeze(-1).to(emb.dtype)  # (B, L, 1)
        parts = []
        if self.pooling in ("mean", "meanmax"):
            # clamp: an all-padding row has 0 tokens; its sum is 0 so the mean is 0
            parts.append((emb * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0))
        if self.pooling in ("max", "meanmax"):
            masked = emb.masked_fill(mask == 0, float("-inf")).amax(dim=1)
            parts.append(torch.where(torch.isinf(masked), torch.zeros_like(masked), masked))
        return torch.cat(parts, dim=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: ``(B, L)`` int64 token ids, padded with ``pad_id`` -> ``(B, output_dim)``."""
        t = as_tensor(ids, "text")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"text: expected integer token ids (int64), got dtype {t.dtype}")
        check_ndim(t, "text", 2, "(B, L)")
        if t.shape[1] < 1:
            raise ValueError(f"text: expected at least one token position, got shape {tuple(t.shape)}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.vocab_size):
            raise ValueError(
                f"text: expected token ids in [0, {self.vocab_size}), got values in [{int(t.min())}, {int(t.max())}]"
            )
        return self.project(self.pool(t.to(device=self.embedding.weight.device, dtype=torch.long)))


class BagOfWordsEncoder(nn.Module):
    """Bag-of-words encoder: ``(B, V)`` counts -> ``linear [-> ReLU -> linear] -> (B, output_dim)``.

    Order-free alternative to :class:`TextEncoder` for short captions; without a
    hidden layer it is an embedding-bag with sum pooling (one linear map).

    Args:
        vocab_size: number of words ``V`` (columns of the input).
        output_dim: size ``D`` of the feature vector.
        hidden_dim: hidden width; ``None`` maps straight ``V -> D`` with one layer.
    """

    def __init__(self, vocab_size: int, output_dim: int = 64, hidden_dim: int | None = None) -> None:
        super().__init__()
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.output_dim = check_positive_int(output_dim, "output_dim")
        if hidden_dim is None:
            self.mlp = nn.Sequential(nn.Linear(self.vocab_size, self.output_dim))
        else:
            hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
            self.mlp = nn.Sequential(
                nn.Linear(self.vocab_size, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, self.output_dim),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(B, V)`` float word counts (or 0/1 indicators) -> ``(B, output_dim)``."""
        w = self.mlp[0].weight
        t = _check_float_input(x, "text", 2, (self.vocab_size,), f"(B, {self.vocab_size})", w)
        return self.mlp(t)
