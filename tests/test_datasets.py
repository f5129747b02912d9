import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mmedu import audio, datasets
from mmedu.datasets import MultimodalDataset, corrupt, drop_modality, load_mmdigits, load_test_waveforms


@pytest.fixture(scope="module")
def train():
    return load_mmdigits("train")


@pytest.fixture(scope="module")
def test():
    return load_mmdigits("test")


def test_documented_shapes_and_ranges(train, test):
    for d, n in ((train, 8000), (test, 2000)):
        assert len(d) == n
        assert d.image.shape == (n, 1, 28, 28) and d.image.dtype == torch.float32
        assert 0.0 <= d.image.min() and d.image.max() <= 1.0
        assert d.audio.shape == (n, audio.N_MELS, audio.N_FRAMES) and d.audio.dtype == torch.float32
        assert len(d.text) == n and all(isinstance(t, str) and t for t in d.text)
        assert d.label.dtype == torch.int64 and set(d.label.unique().tolist()) == set(range(10))
        assert d.speaker.shape == d.recording.shape == (n,)
    assert len(train.speakers) == 6


def test_audio_is_paired_at_class_level(train, test):
    d = np.load(datasets.DATA_DIR / "mmdigits.npz")
    for split in (train, test):
        assert torch.equal(torch.from_numpy(d["rec_digit"])[split.recording], split.label)


def test_no_recording_in_both_splits_and_fsdd_take_convention(train, test):
    d = np.load(datasets.DATA_DIR / "mmdigits.npz")
    takes = torch.from_numpy(d["rec_take"])
    assert not set(train.recording.tolist()) & set(test.recording.tolist())
    assert takes[test.recording].max() <= 4 and takes[train.recording].min() >= 5


def test_images_are_distinct_mnist_items(train, test):
    assert not set(train.mnist_index.tolist()) & set(test.mnist_index.tolist())
    assert len(set(train.mnist_index.tolist())) == len(train)


def test_captions_describe_the_image_not_only_the_class(test):
    # Instance level: most captions are unique, and captions of one class differ.
    assert len(set(test.text)) > 0.9 * len(test)
    # Partial clue: not every caption names its digit.
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    named = sum(words[y] in t.lower().split() or f" {y}." in t for t, y in zip(test.text, test.label.tolist()))
    assert 0.1 * len(test) < named < 0.6 * len(test)


def test_loading_returns_fresh_tensors(train):
    again = load_mmdigits("train")
    again.image.zero_()
    assert load_mmdigits("train").image.max() == 1.0


def test_shipped_spectrograms_match_mmedu_audio_on_waveforms(test):
    w = load_test_waveforms()
    assert len(w["waveforms"]) == 300 and w["sample_rate"] == 8000
    assert w["take"].max() <= 4
    for i in (0, 57, 299):
        lm = audio.log_mel_spectrogram(audio.fix_length(w["waveforms"][i].double())).float()
        rows = (test.recording == w["recording"][i]).nonzero()
        if len(rows):
            # shipped values are quantised to 8 bits over a 24-nat range: error <= half a step
            assert (lm - test.audio[rows[0, 0]]).abs().max() <= 24 / 255 / 2 + 1e-4


def test_unknown_split():
    with pytest.raises(ValueError, match=r"split: expected one of \['train', 'test'\], got 'valid'"):
        load_mmdigits("valid")


def test_corrupted_and_missing_files(tmp_path):
    for f in ("mmdigits.npz", "fsdd_test_waveforms.npz", "SHA256SUMS"):
        shutil.copy(datasets.DATA_DIR / f, tmp_path / f)
    raw = bytearray((tmp_path / "mmdigits.npz").read_bytes())
    raw[1000] ^= 0xFF
    (tmp_path / "mmdigits.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"mmdigits\.npz is corrupted: sha256"):
        load_mmdigits("test", data_dir=tmp_path)
    (tmp_path / "fsdd_test_waveforms.npz").unlink()
    with pytest.raises(FileNotFoundError, match="fsdd_test_waveforms.npz"):
        load_test_waveforms(data_dir=tmp_path)


def test_multimodal_dataset_batches_dicts(test):
    ds = MultimodalDataset({"image": test.image, "audio": test.audio}, test.label)
    item = ds[3]
    assert set(item) == {"image", "audio", "label"} and item["image"].shape == (1, 28, 28)
    batch = next(iter(DataLoader(ds, batch_size=5)))
    assert batch["audio"].shape == (5, 40, 63) and batch["label"].shape == (5,)
    sub = MultimodalDataset.from_mmdigits(test.subset(slice(0, 10)), ("text",),
                                          text_encoder=lambda t: torch.tensor([len(s) for s in t]))
    assert len(sub) == 10 and sub[0]["text"] == len(test.text[0])


def test_multimodal_dataset_errors(test):
    with pytest.raises(ValueError, match="same batch size"):
        MultimodalDataset({"image": test.image[:5]}, test.label[:4])
    with pytest.raises(TypeError, match="dict"):
        MultimodalDataset([test.image], test.label)
    with pytest.raises(ValueError, match="reserved"):
        MultimodalDataset({"label": test.label}, test.label)
    with pytest.raises(ValueError, match="text_encoder"):
        MultimodalDataset.from_mmdigits(test, ("text",))
    with pytest.raises(ValueError, match="modality"):
        MultimodalDataset.from_mmdigits(test, ("video",))


def test_drop_modality():
    x = torch.ones(1000, 3)
    g = torch.Generator().manual_seed(0)
    y = drop_modality(x, 0.3, generator=g)
    dropped = (y.sum(1) == 0).float().mean().item()
    assert 0.25 < dropped < 0.35 and set(y.sum(1).tolist()) <= {0.0, 3.0}
    assert x.sum() == 3000  # input untouched
    assert torch.equal(drop_modality(x, 0.0), x) and drop_modality(x, 1.0).sum() == 0
    with pytest.raises(ValueError, match="probability"):
        drop_modality(x, 1.5)


def test_corrupt():
    x = torch.ones(4, 1, 10, 10)
    occ = corrupt(x, "occlude", 0.5, generator=torch.Generator().manual_seed(0))
    assert ((occ == 0).sum(dim=(1, 2, 3)) == 25).all()
    noisy = corrupt(torch.zeros(20000), "gaussian", 0.5, generator=torch.Generator().manual_seed(0))
    assert abs(noisy.std().item() - 0.5) < 0.02
    assert torch.equal(corrupt(x, "gaussian", 0.0), x)
    with pytest.raises(ValueError, match="kind"):
        corrupt(x, "blur", 0.1)
    with pytest.raises(ValueError, match=r"level \(for 'occlude'\): expected a real number in \[0, 1\], got 1.5"):
        corrupt(x, "occlude", 1.5)
    # NaN compares false with every bound and used to pass, giving an all-NaN "noisy" batch
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"level \(for 'gaussian'\): expected a finite real number"):
            corrupt(x, "gaussian", bad)
    with pytest.raises(ValueError, match=r"level \(for 'gaussian'\): expected a real number in \[0, inf\)"):
        corrupt(x, "gaussian", -0.1)
    with pytest.raises(TypeError, match="level"):
        corrupt(x, "gaussian", "0.5")
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        corrupt(torch.zeros(3, 5), "occlude", 0.2)


REPO = Path(__file__).resolve().parents[1]
RAW_DIR = REPO.parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(not (RAW_DIR / "mnist").is_dir(), reason=f"raw data folder {RAW_DIR} not present")
def test_build_script_reproduces_the_shipped_files_byte_for_byte(tmp_path):
    import subprocess
    import sys

    script = REPO / "scripts" / "build_mmdigits.py"
    subprocess.run([sys.executable, str(script), str(RAW_DIR), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    for f in ("mmdigits.npz", "fsdd_test_waveforms.npz", "SHA256SUMS"):
        assert (tmp_path / f).read_bytes() == (datasets.DATA_DIR / f).read_bytes(), f


def test_interaction_task_label_is_a_product_no_single_modality_predicts_it():
    from mmedu.datasets import make_interaction_task

    (x1, x2), y = make_interaction_task(20000, dim=3, seed=1)
    assert x1.shape == x2.shape == (20000, 3) and y.dtype == torch.int64
    assert torch.equal(y, (x1[:, 0] * x2[:, 0] > 0).long())
    assert abs(y.float().mean().item() - 0.5) < 0.02
    # Each modality's sign alone agrees with the label only half of the time.
    for x in (x1, x2):
        assert abs(((x[:, 0] > 0).long() == y).float().mean().item() - 0.5) < 0.02
    (a, _), y_again = make_interaction_task(20000, dim=3, seed=1)
    assert torch.equal(a, x1) and torch.equal(y_again, y)
    with pytest.raises(ValueError, match="n"):
        make_interaction_task(0)


def test_waveform_metadata_agrees_with_the_dataset_tables():
    w = load_test_waveforms()
    d = np.load(datasets.DATA_DIR / "mmdigits.npz")
    ids = w["recording"].numpy()
    assert (w["digit"].numpy() == d["rec_digit"][ids]).all()
    assert (w["speaker"].numpy() == d["rec_speaker"][ids]).all()
    assert (w["take"].numpy() == d["rec_take"][ids]).all()
    assert w["speakers"] == tuple(d["speakers"])


# ---------------------------------------------------------------- speaker-held-out split


def test_held_out_speakers_separates_speakers_and_keeps_pairing():
    from mmedu.datasets import _load_verified

    d = _load_verified("mmdigits.npz")
    train = load_mmdigits("train", held_out_speakers=("theo",))
    test = load_mmdigits("test", held_out_speakers=("theo",))
    theo = train.speakers.index("theo")
    assert (test.speaker == theo).all() and not (train.speaker == theo).any()
    assert not set(train.recording.tolist()) & set(test.recording.tolist())
    for split in (train, test):
        # the audio still says the item's digit, and its spectrogram is that recording's
        assert torch.equal(torch.from_numpy(d["rec_digit"])[split.recording], split.label)
        assert torch.equal(torch.from_numpy(d["rec_speaker"])[split.recording], split.speaker)
    plain = load_mmdigits("test")
    assert torch.equal(test.image, plain.image) and test.text == plain.text and torch.equal(test.label, plain.label)
    # balanced: every recording of the held-out speaker serves 3 or 4 of the 2,000 test items
    counts = torch.bincount(test.recording)[test.recording.unique()]
    assert counts.min() >= 3 and counts.max() <= 5
    again = load_mmdigits("test", held_out_speakers=["theo"])
    assert torch.equal(again.recording, test.recording) and torch.equal(again.audio, test.audio)


@pytest.mark.parametrize("bad, err", [("theo", TypeError), (("nobody",), ValueError), ((), ValueError),
                                      (("george", "jackson", "lucas", "nicolas", "theo", "yweweler"), ValueError)])
def test_held_out_speakers_bad_input(bad, err):
    with pytest.raises(err, match="held_out_speakers"):
        load_mmdigits("test", held_out_speakers=bad)


def test_make_captions_reports_its_clue_kinds():
    from mmedu.captions import CLUE_PROBABILITIES, DIGIT_WORDS, make_captions

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 50)
    caps, kinds = make_captions(images, labels, seed=3, return_clues=True)
    assert caps == make_captions(images, labels, seed=3)  # asking for the record changes no caption
    assert len(kinds) == 50 and set(kinds) <= set(CLUE_PROBABILITIES) | {"none"}
    for c, k, y in zip(caps, kinds, labels):
        if k == "name":
            assert any(w in c for w in (DIGIT_WORDS[y], f"number {y}.", f"handwritten {y}."))
