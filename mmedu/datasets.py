"""The embedded MMDigits dataset: handwritten digit + spoken digit + caption.

``load_mmdigits(split)`` returns 8,000 (``"train"``) or 2,000 (``"test"``) items, each with

=============  ==========================  =================================================
field          shape / type                what
=============  ==========================  =================================================
``image``      ``(N, 1, 28, 28)`` float32  MNIST handwritten digit (test set), in [0, 1]
``audio``      ``(N, 40, 63)`` float32     log-mel spectrogram (natural log, 1 s, 8 kHz) of a
                                           real FSDD recording of the **same digit**
``text``       ``list[str]`` of length N   English caption of properties measured on this
                                           very image plus a partial clue about the digit
``label``      ``(N,)`` int64              the digit 0–9
``speaker``    ``(N,)`` int64              FSDD speaker id (index into ``speakers``)
``recording``  ``(N,)`` int64              FSDD recording id (index into the 3,000 recordings)
=============  ==========================  =================================================

**Pairing.** Image ↔ caption is *instance level*: the caption describes the pixels of
that image (stroke thickness, slant, width, ink), see :mod:`mmedu.captions`.  Image ↔
audio is *class level* only: the recording is some speaker saying the same digit; the
two were never recorded together (as in the AV-MNIST benchmark).  Each recording serves
several images.  No recording appears in both splits: takes 0–4 of each speaker and
digit serve the test split, takes 5–49 the train split (FSDD's own convention). The same six speakers are heard
in both splits; ``load_mmdigits(split, held_out_speakers=("theo",))`` holds speakers out
of training instead (a speaker-independent audio task).

**Files.** ``mmedu/data/mmdigits.npz`` and ``fsdd_test_waveforms.npz`` are built by
``scripts/build_mmdigits.py`` from the raw MNIST / FSDD files and checked against
``mmedu/data/SHA256SUMS`` on load.  Licences: ``mmedu/data/LICENSE-DATA.md``.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ._checks import as_tensor, check_choice, check_positive_int, check_same_batch, check_scalar
from .audio import SAMPLE_RATE

__all__ = [
    "DATA_DIR",
    "SPLITS",
    "MMDigits",
    "load_mmdigits",
    "load_test_waveforms",
    "MultimodalDataset",
    "drop_modality",
    "corrupt",
    "make_interaction_task",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
SPLITS = ("train", "test")  #: The splits :func:`load_mmdigits` accepts.
_REBUILD_HINT = ("reinstall mmedu, or rebuild the data with "
                 "`python scripts/build_mmdigits.py RAW_DIR` (see mmedu/data/LICENSE-DATA.md for the sources)")


def _expected_checksums(data_dir: Path) -> dict[str, str]:
    sums = data_dir / "SHA256SUMS"
    if not sums.exists():
        raise FileNotFoundError(f"checksum file missing: {sums}; {_REBUILD_HINT}")
    out = {}
    for line in sums.read_text().splitlines():
        digest, name = line.split()
        out[name] = digest
    return out


def _load_verified(name: str, data_dir: Path | None = None) -> dict[str, np.ndarray]:
    """Read ``data_dir/name`` after checking its sha256 against ``SHA256SUMS``."""
    data_dir = DATA_DIR if data_dir is None else Path(data_dir)
    path = data_dir / name
    if not path.exists():
        raise FileNotFoundError(f"embedded data file missing: {path}; {_REBUILD_HINT}")
    expected = _expected_checksums(data_dir).get(name)
    raw = path.read_bytes()
    got = hashlib.sha256(raw).hexdigest()
    if got != expected:
        raise ValueError(f"embedded data file {path} is corrupted: sha256 {got}, expected {expected}; {_REBUILD_HINT}")
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@dataclass
class MMDigits:
    """One split of the MMDigits dataset (see the module docstring for every field)."""

    split: str
    image: torch.Tensor
    audio: torch.Tensor
    text: list[str]
    label: torch.Tensor
    speaker: torch.Tensor
    recording: torch.Tensor
    speakers: tuple[str, ...] = field(default_factory=tuple)
    mnist_index: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.label)

    def __repr__(self) -> str:
        return (f"MMDigits(split={self.split!r}, n={len(self)}, image={tuple(self.image.shape)}, "
                f"audio={tuple(self.audio.shape)}, text=[{len(self.text)} captions])")

    def subset(self, index: slice | Sequence[int] | torch.Tensor | np.ndarray) -> "MMDigits":
        """The items at ``index`` (a slice, a sequence of ints or a boolean mask)."""
        idx = torch.arange(len(self))[index]
        return MMDigits(self.split, self.image[idx], self.audio[idx], [self.text[i] for i in idx.tolist()],
                        self.label[idx], self.speaker[idx], self.recording[idx], self.speakers,
                        None if self.mnist_index is None else self.mnist_index[idx])


def load_mmdigits(split: str = "train", data_dir: str | Path | None = None,
                  held_out_speakers: Sequence[str] | None = None) -> MMDigits:
    """Load one split of the embedded image + audio + text dataset.

    Args:
        split: ``"train"`` (8,000 items) or ``"test"`` (2,000 items).
        data_dir: folder with the data files; default: the copy inside the package.
        held_out_speakers: ``None`` (default): the same six FSDD speakers are heard in both
            splits (test items use takes 0–4, train items takes 5–49), so the audio task is
            speaker-*dependent*. A sequence of speaker names (from ``MMDigits.speakers``, e.g.
            ``("theo",)``) makes it speaker-*independent*: every test item's audio is re-paired
            with a recording (any take) of a held-out speaker saying the same digit, every
            train item's with a recording of one of the other speakers. Images, captions and
            labels do not change. The re-pairing is balanced over recordings and fixed (a
            seeded draw), so both splits agree for the same ``held_out_speakers``.

    Returns:
        :class:`MMDigits` with ``image (N, 1, 28, 28)`` float32 in [0, 1], ``audio
        (N, 40, 63)`` float32 log-mel, ``text`` list of N captions, ``label``,
        ``speaker`` and ``recording`` ``(N,)`` int64.

    Raises:
        ValueError: unknown split, or a data file whose checksum does not match.
        FileNotFoundError: a data file is missing.
    """
    check_choice(split, "split", SPLITS)
    d = _load_verified("mmdigits.npz", data_dir)
    lo, hi = d["logmel_range"]
    if held_out_speakers is None:
        rec = torch.from_numpy(d[f"{split}_recording"])
    else:
        rec = torch.from_numpy(_repair_by_speaker(d, split, held_out_speakers))
    logmel_q = torch.from_numpy(d["rec_logmel"])[rec]  # (N, 40, 63) uint8
    return MMDigits(
        split=split,
        image=torch.from_numpy(d[f"{split}_image"]).float().div_(255.0).unsqueeze(1),
        audio=logmel_q.float().mul_((hi - lo) / 255.0).add_(lo),
        text=[str(s) for s in d[f"{split}_caption"]],
        label=torch.from_numpy(d[f"{split}_label"]),
        speaker=torch.from_numpy(d["rec_speaker"])[rec],
        recording=rec,
        speakers=tuple(str(s) for s in d["speakers"]),
        mnist_index=torch.from_numpy(d[f"{split}_mnist_index"]),
    )


def _repair_by_speaker(d: Mapping[str, np.ndarray], split: str, held_out: Sequence[str]) -> np.ndarray:
    """Recording ids ``(N,)`` for ``split`` with the audio restricted by speaker (see
    :func:`load_mmdigits`)."""
    if isinstance(held_out, str) or not isinstance(held_out, Sequence):
        raise TypeError(f"held_out_speakers: expected a sequence of speaker names such as ('theo',), "
                        f"got {held_out!r}")
    speakers = [str(x) for x in d["speakers"]]
    unknown = [h for h in held_out if h not in speakers]
    if unknown or not held_out:
        raise ValueError(f"held_out_speakers: expected a non-empty subset of {speakers}, got {list(held_out)}")
    if len(set(held_out)) == len(speakers):
        raise ValueError("held_out_speakers: at least one speaker must remain for the train split")
    held_ids = [speakers.index(h) for h in held_out]
    in_held = np.isin(d["rec_speaker"], held_ids)
    allowed = in_held if split == "test" else ~in_held
    labels = d[f"{split}_label"]
    # A fixed draw per split; every allowed recording of a digit serves about equally many items.
    rng = np.random.default_rng([20240917, SPLITS.index(split), *sorted(held_ids)])
    out = np.empty(len(labels), dtype=np.int64)
    for digit in range(10):
        items = np.flatnonzero(labels == digit)
        recs = np.flatnonzero(allowed & (d["rec_digit"] == digit))
        order = recs[rng.permutation(len(recs))]
        out[items[rng.permutation(len(items))]] = order[np.arange(len(items)) % len(order)]
    return out


def load_test_waveforms(data_dir: str | Path | None = None) -> dict:
    """The 300 test-split FSDD recordings as waveforms (only the test split ships waveforms).

    Returns:
        dict with ``waveforms`` (list of 300 float32 tensors ``(T_i,)`` in [−1, 1]),
        ``recording`` ``(300,)`` int64 ids (the ids used by ``MMDigits.recording``),
        ``digit``, ``speaker``, ``take`` ``(300,)`` int64, ``speakers`` (names) and
        ``sample_rate`` (8000).
    """
    w = _load_verified("fsdd_test_waveforms.npz", data_dir)
    off = w["offsets"]
    samples = torch.from_numpy(w["samples"].astype(np.float32) / 32768.0)
    ids = torch.from_numpy(w["recording"])
    return {
        "waveforms": [samples[off[i]: off[i + 1]].clone() for i in range(len(ids))],
        "recording": ids,
        "digit": torch.from_numpy(w["digit"]),
        "speaker": torch.from_numpy(w["speaker"]),
        "take": torch.from_numpy(w["take"]),
        "speakers": tuple(str(s) for s in w["speakers"]),
        "sample_rate": SAMPLE_RATE,
    }


class MultimodalDataset(Dataset):
    """A torch ``Dataset`` of dicts over any subset of modalities.

    Args:
        modalities: name → tensor with the items along dim 0, e.g. ``{"image": (N, 1, 28, 28),
            "text": (N, L)}``; every tensor must have the same N.
        label: ``(N,)`` targets.

    ``dataset[i]`` is ``{"image": (1, 28, 28), "text": (L,), "label": ()}``; the default
    ``DataLoader`` collation stacks these into a dict batch.
    """

    def __init__(self, modalities: Mapping[str, torch.Tensor], label: torch.Tensor | np.ndarray) -> None:
        if not isinstance(modalities, Mapping) or not modalities:
            raise TypeError(f"modalities: expected a non-empty dict name -> tensor, got {type(modalities).__name__}")
        if "label" in modalities:
            raise ValueError("modalities: the key 'label' is reserved for the targets")
        self.modalities = {k: as_tensor(v, f"modalities[{k!r}]") for k, v in modalities.items()}
        self.label = as_tensor(label, "label")
        names = [*self.modalities, "label"]
        check_same_batch([*self.modalities.values(), self.label], names)

    @classmethod
    def from_mmdigits(cls, data: MMDigits, modalities: Sequence[str] = ("image", "audio", "text"),
                      text_encoder: Callable[[list[str]], torch.Tensor] | None = None) -> "MultimodalDataset":
        """Wrap :class:`MMDigits`; ``text_encoder`` maps the list of captions to a tensor
        (e.g. ``vocab.bag_of_words``) and is required when ``"text"`` is asked for."""
        out = {}
        for m in modalities:
            check_choice(m, "modality", ("image", "audio", "text"))
            if m == "text":
                if text_encoder is None:
                    raise ValueError("text_encoder: required to turn captions into a tensor, e.g. vocab.bag_of_words")
                out[m] = text_encoder(data.text)
            else:
                out[m] = getattr(data, m)
        return cls(out, data.label)

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {k: v[i] for k, v in self.modalities.items()}
        item["label"] = self.label[i]
        return item


def drop_modality(x: torch.Tensor | np.ndarray, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero whole samples of one modality with probability ``p`` (modality dropout).

    Args:
        x: ``(B, …)`` features of one modality.
        p: probability in [0, 1] that a sample's modality is missing (set to 0).

    Returns:
        ``(B, …)`` a new tensor; ``x`` is not modified.
    """
    x = as_tensor(x, "x")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p}")
    if x.ndim == 0:
        raise ValueError("x: expected a batch (B, ...), got a 0-D tensor")
    keep = torch.rand(x.shape[0], generator=generator, device="cpu").ge(p).to(x.device)
    return x * keep.view(-1, *([1] * (x.ndim - 1))).to(x.dtype)


def corrupt(x: torch.Tensor | np.ndarray, kind: str, level: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Corrupt a batch of one modality (for robustness experiments).

    Args:
        x: ``(B, …)`` float features; for ``"occlude"`` images ``(B, C, H, W)``.
        kind: ``"gaussian"`` — add ``level · N(0, 1)`` noise;
            ``"occlude"`` — zero one random square covering a ``level`` fraction of each image's side;
        level: noise standard deviation (≥ 0) or occluded side fraction in [0, 1].

    Returns:
        ``(B, …)`` a new tensor; ``x`` is not modified.
    """
    x = as_tensor(x, "x", floating=True)
    check_choice(kind, "kind", ("gaussian", "occlude"))
    level = check_scalar(level, f"level (for {kind!r})", ge=0, le=1 if kind == "occlude" else None, tensor=True)
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        return x + level * noise
    if x.ndim != 4:
        raise ValueError(f"x: 'occlude' expects images (B, C, H, W), got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    side_h, side_w = round(level * h), round(level * w)
    top = torch.randint(0, h - side_h + 1, (b,), generator=generator)
    left = torch.randint(0, w - side_w + 1, (b,), generator=generator)
    rows = torch.arange(h)[None, :, None]
    cols = torch.arange(w)[None, None, :]
    hole = ((rows >= top[:, None, None]) & (rows < (top + side_h)[:, None, None])
            & (cols >= left[:, None, None]) & (cols < (left + side_w)[:, None, None]))
    return x.masked_fill(hole[:, None].to(x.device), 0.0)


def make_interaction_task(n: int, dim: int = 4, seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """A synthetic two-modality task whose label is an *interaction* between the modalities.

    Each modality is ``dim`` standard-normal features; the label is
    ``y = [x1[:, 0] · x2[:, 0] > 0]`` (an XOR of the two signs). Neither modality alone
    says anything about ``y``, and no weighted sum of the features does either: a linear
    model on the concatenation stays at chance, while a hidden layer or a multiplicative
    (tensor) fusion solves it. Chapters 1 and 2 use it.

    Args:
        n: number of items.
        dim: features per modality (only the first one matters; the rest are distractors).
        seed: seeds the generator, so ``seed`` alone fixes the data.

    Returns:
        ``([x1, x2], y)`` with ``x1, x2: (n, dim)`` float32 and ``y: (n,)`` int64 in {0, 1}.
    """
    n = check_positive_int(n, "n")
    dim = check_positive_int(dim, "dim")
    g = torch.Generator().manual_seed(seed)
    x1, x2 = torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g)
    y = (x1[:, 0] * x2[:, 0] > 0).long()
    return [x1, x2], y
