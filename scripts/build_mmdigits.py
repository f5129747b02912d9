"""Build the embedded MMDigits dataset from the raw MNIST and FSDD files.

Usage::

    python scripts/build_mmdigits.py RAW_DIR [--out mmedu/data]

``RAW_DIR`` holds ``mnist/t10k-images-idx3-ubyte.gz``, ``mnist/t10k-labels-idx1-ubyte.gz``
and ``fsdd/recordings.zip`` (+ ``fsdd/speakers.csv``); each raw file is checked against
its known sha256 first.  The output is byte-identical when the script runs twice.

What it writes (see ``mmedu/datasets.py`` for how it is read):

* ``mmdigits.npz`` — 10,000 MNIST test-set images split 8,000 train / 2,000 test by a
  seeded permutation; their labels and captions (``mmedu.captions``); for each image the
  id of the FSDD recording paired with it; and the 3,000 recordings as log-mel
  spectrograms (``mmedu.audio`` settings: 1 s, 40 mels × 63 frames), quantised to uint8
  over a fixed range of the natural-log scale.  Recordings with take 0–4 serve the test
  split only, takes 5–49 the train split (FSDD's convention), so no recording appears in
  both splits.  Pairing is class level: an image of a 7 gets some recording of "seven".
* ``fsdd_test_waveforms.npz`` — the 300 test-split recordings as int16 waveforms, for
  listening and for deriving the spectrogram from scratch.
* ``SHA256SUMS`` — checksums that ``load_mmdigits`` verifies on load.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import re
import sys
import wave
import zipfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmedu import audio  # noqa: E402
from mmedu.captions import make_captions, measure_digits  # noqa: E402

RAW_SHA256 = {
    "fsdd/recordings.zip": "ac804f3d9d5c7cb66774b5a885a7c0966841409d6a7a01c5db838ce02f386ca2",
    "fsdd/speakers.csv": "63727d1e2c34b20c7bee91880fda3350c99cc74118221d68154ba0682bda95f8",
    "mnist/t10k-images-idx3-ubyte.gz": "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
    "mnist/t10k-labels-idx1-ubyte.gz": "fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c",
}
SEED = 2026
N_TRAIN = 8000
TEST_TAKES = range(0, 5)
#: Fixed quantisation range of the log-mel values (natural log); log(1e-6) ≈ −13.8 is silence.
LOGMEL_RANGE = (-14.0, 10.0)
NAME_RE = re.compile(r"(?:.*/)?(\d)_([a-z]+)_(\d+)\.wav$")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_raw(raw: Path) -> None:
    for rel, want in RAW_SHA256.items():
        p = raw / rel
        if not p.exists():
            sys.exit(f"missing raw file: {p}")
        got = sha256(p)
        if got != want:
            sys.exit(f"checksum mismatch for {p}: expected {want}, got {got}")


def read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_fsdd(zip_path: Path, speakers: list[str]):
    recs = []
    with zipfile.ZipFile(zip_path) as z:
        for name in z.namelist():
            m = NAME_RE.match(name)
            if not m:
                continue
            with wave.open(io.BytesIO(z.read(name))) as w:
                assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (audio.SAMPLE_RATE, 2, 1), name
                pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()
            recs.append((int(m.group(1)), speakers.index(m.group(2)), int(m.group(3)), pcm))
    recs.sort(key=lambda r: r[:3])  # deterministic order: digit, speaker, take
    return recs


def quantise_logmel(logmel: np.ndarray) -> np.ndarray:
    lo, hi = LOGMEL_RANGE
    if logmel.min() < lo or logmel.max() > hi:
        raise SystemExit(f"log-mel values [{logmel.min():.2f}, {logmel.max():.2f}] leave the range {LOGMEL_RANGE}")
    return np.round((logmel - lo) / (hi - lo) * 255.0).astype(np.uint8)


def pair_recordings(labels: np.ndarray, rec_digit: np.ndarray, rec_ids: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """For each image, a recording id of the same digit, using every recording equally often."""
    paired = np.empty(len(labels), dtype=np.int64)
    for d in range(10):
        imgs = np.flatnonzero(labels == d)
        pool = rec_ids[rec_digit[rec_ids] == d]
        cycles = -(-len(imgs) // len(pool))
        order = np.concatenate([rng.permutation(pool) for _ in range(cycles)])
        paired[imgs] = order[: len(imgs)]
    return paired


def save_npz(path: Path, **arrays) -> None:
    # np.savez_compressed stamps every member with a fixed date, so equal arrays give equal bytes.
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def build(raw: Path, out: Path) -> None:
    check_raw(raw)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)

    images = read_idx(raw / "mnist/t10k-images-idx3-ubyte.gz")
    labels = read_idx(raw / "mnist/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    perm = rng.permutation(len(images))
    split_idx = {"train": np.sort(perm[:N_TRAIN]), "test": np.sort(perm[N_TRAIN:])}

    with open(raw / "fsdd/speakers.csv", newline="") as f:
        speakers = [row["speaker"] for row in csv.DictReader(f)]
    recs = read_fsdd(raw / "fsdd/recordings.zip", speakers)
    rec_digit = np.array([r[0] for r in recs], dtype=np.int64)
    rec_speaker = np.array([r[1] for r in recs], dtype=np.int64)
    rec_take = np.array([r[2] for r in recs], dtype=np.int64)
    rec_length = np.array([len(r[3]) for r in recs], dtype=np.int64)
    waves = torch.stack([audio.fix_length(torch.from_numpy(r[3].astype(np.float64) / 32768.0)) for r in recs])
    logmel = audio.log_mel_spectrogram(waves).numpy()  # float64, (3000, 40, 63)
    rec_logmel = quantise_logmel(logmel)

    is_test_rec = np.isin(rec_take, list(TEST_TAKES))
    rec_pool = {"train": np.flatnonzero(~is_test_rec), "test": np.flatnonzero(is_test_rec)}

    reference = measure_digits(images[split_idx["train"]])
    arrays = {}
    for split in ("train", "test"):
        idx = split_idx[split]
        arrays[f"{split}_image"] = images[idx]
        arrays[f"{split}_label"] = labels[idx]
        arrays[f"{split}_mnist_index"] = idx.astype(np.int64)
        arrays[f"{split}_recording"] = pair_recordings(labels[idx], rec_digit, rec_pool[split], rng)
        caps = make_captions(images[idx], labels[idx], seed=SEED + (split == "test"), reference=reference)
        arrays[f"{split}_caption"] = np.array(caps)
    arrays.update(rec_logmel=rec_logmel, rec_digit=rec_digit, rec_speaker=rec_speaker, rec_take=rec_take,
                  rec_length=rec_length, speakers=np.array(speakers),
                  logmel_range=np.array(LOGMEL_RANGE, dtype=np.float64))
    save_npz(out / "mmdigits.npz", **arrays)

    test_ids = rec_pool["test"]
    pcm = [recs[i][3] for i in test_ids]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pcm])]).astype(np.int64)
    # Self-contained: the metadata rides along so listening needs no second file.
    save_npz(out / "fsdd_test_waveforms.npz", recording=test_ids.astype(np.int64), offsets=offsets,
             samples=np.concatenate(pcm).astype(np.int16), digit=rec_digit[test_ids],
             speaker=rec_speaker[test_ids], take=rec_take[test_ids], speakers=np.array(speakers))

    files = ["fsdd_test_waveforms.npz", "mmdigits.npz"]
    (out / "SHA256SUMS").write_text("".join(f"{sha256(out / f)}  {f}\n" for f in files))
    for f in files:
        print(f"{f}: {(out / f).stat().st_size / 1e6:.2f} MB")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw_dir", type=Path, help="folder with mnist/ and fsdd/ raw files")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "mmedu" / "data")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # one thread: the float64 reductions then do not depend on the core count
    build(args.raw_dir, args.out)


if __name__ == "__main__":
    main()
