"""Tests for mmedu.training: seeding, device choice, fit/evaluate/predict behaviour."""

import math
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from mmedu.training import History, default_forward, evaluate, fit, get_device, predict, set_seed


def _blobs(n=96, d=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % c
    centers = 3.0 * torch.randn(c, d, generator=g)
    x = centers[y] + torch.randn(n, d, generator=g)
    return x, y


class DictDataset(Dataset):
    """Yields {"image": x, "audio": x ** 2, "label": y} like MultimodalDataset."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"image": self.x[i], "audio": self.x[i] ** 2, "label": self.y[i]}


class DictModel(nn.Module):
    def __init__(self, d=5, c=3):
        super().__init__()
        self.img = nn.Linear(d, c)
        self.aud = nn.Linear(d, c)

    def forward(self, batch):
        return self.img(batch["image"]) + self.aud(batch["audio"])


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_set_seed_seeds_every_rng_and_returns_generator():
    g1 = set_seed(123)
    a = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g1).item())
    g2 = set_seed(123)
    b = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g2).item())
    assert a == b
    assert isinstance(g1, torch.Generator) and g1.initial_seed() == 123
    set_seed(124)
    assert random.random() != a[0]
    with pytest.raises(ValueError, match="seed: expected an integer >= 0"):
        set_seed(-1)
    with pytest.raises(TypeError, match="seed: expected an integer, got float"):
        set_seed(1.5)


def test_get_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type == expected
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="prefer: expected one of 'cpu', 'cuda'.*got 'gpu'"):
        get_device("gpu")
    with pytest.raises(TypeError, match="prefer: expected a str"):
        get_device(0)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            get_device("cuda")
    else:
        with pytest.raises(RuntimeError, match="expected a CUDA index <"):
            get_device(f"cuda:{torch.cuda.device_count()}")


def test_fit_learns_and_history_shapes():
    x, y = _blobs()
    g = set_seed(0)
    model = nn.Linear(5, 3)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hist = fit(model, loader, opt, epochs=4, val_loader=DataLoader(TensorDataset(x, y), batch_size=32), progress=False)
    assert isinstance(hist, History) and len(hist) == 4
    assert all(len(v) == 4 for v in hist.as_dict().values())
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert hist.val_acc[-1] > 0.9  # well separated blobs
    # val metrics after the last epoch == a fresh evaluate
    res = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=7))
    assert res["loss"] == pytest.approx(hist.val_loss[-1], rel=1e-5)
    assert res["accuracy"] == hist.val_acc[-1]


def test_metrics_match_full_batch_computation():
    x, y = _blobs(n=50)
    model = nn.Linear(5, 3)
    res = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=8))  # uneven last batch
    with torch.no_grad():
        logits = model(x)
    assert res["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert res["accuracy"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    # training metrics of one epoch with lr=0 are the same full-batch numbers
    hist = fit(model, DataLoader(TensorDataset(x, y), batch_size=8), torch.optim.SGD(model.parameters(), lr=0.0), progress=False)
    assert hist.train_loss[0] == pytest.approx(res["loss"], rel=1e-5)
    assert hist.train_acc[0] == res["accuracy"]
    assert hist.val_loss == [] and hist.val_acc == []


def test_fit_step_changes_parameters_evaluate_does_not():
    x, y = _blobs()
    model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.5), nn.BatchNorm1d(8), nn.Linear(8, 3))
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    before = _params(model)
    buffers = [b.clone() for b in model.buffers()]
    evaluate(model, loader)
    evaluate(model, loader)
    assert not model.training
    for a, b in zip(before, _params(model)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(buffers, model.buffers()):  # batch-norm statistics untouched
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert all(p.grad is None for p in model.parameters())
    fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert model.training
    assert all(not torch.equal(a, b) for a, b in zip(before, _params(model)))


def _seeded_run(seed):
    x, y = _blobs()
    g = set_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    hist = fit(model, loader, opt, epochs=3, val_loader=DataLoader(TensorDataset(x, y), batch_size=32), progress=False)
    return hist, _params(model)


def test_seeded_runs_are_identical():
    h1, p1 = _seeded_run(7)
    h2, p2 = _seeded_run(7)
    assert h1.as_dict() == h2.as_dict()
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    h3, _ = _seeded_run(8)
    assert h3.as_dict() != h1.as_dict()


def test_dict_batches_and_custom_forward():
    x, y = _blobs()
    loader = DataLoader(DictDataset(x, y), batch_size=16)
    set_seed(0)
    model = DictModel()
    hist = fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, progress=False)
    assert hist.train_acc[-1] > 0.8
    # custom forward: only the image branch
    calls = []

    def image_only(m, batch):
        calls.append(sorted(batch))
        return m.img(batch["image"]), batch["label"]

    res = evaluate(model, loader, forward=image_only)
    with torch.no_grad():
        logits = model.img(x)
    assert res["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert calls[0] == ["audio", "image", "label"] and len(calls) == 6
    out, tgt = predict(model, loader)
    with torch.no_grad():
        torch.testing.assert_close(out, model({"image": x, "audio": x**2}))
    torch.testing.assert_close(tgt, y)


def test_accuracy_nan_for_regression():
    x, _ = _blobs()
    t = x.sum(1, keepdim=True)
    model = nn.Linear(5, 1)
    hist = fit(model, DataLoader(TensorDataset(x, t), batch_size=16), torch.optim.SGD(model.parameters(), lr=0.01),
               loss_fn=F.mse_loss, epochs=2, progress=False)
    assert all(math.isnan(a) for a in hist.train_acc)
    res = evaluate(model, DataLoader(TensorDataset(x, t), batch_size=16), loss_fn=F.mse_loss)
    assert math.isnan(res["accuracy"])
    with torch.no_grad():
        assert res["loss"] == pytest.approx(F.mse_loss(model(x), t).item(), rel=1e-5)


def test_progress_bar_output(capsys):
    x, y = _blobs(n=32)
    model = nn.Linear(5, 3)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, progress=False)
    assert capsys.readouterr().err == ""
    hist = fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, desc="demo")
    err = capsys.readouterr().err
    final = err.split("\r")[-1].strip()
    assert final.startswith("demo: 100%") and "2/2 epochs" in final
    assert f"loss={hist.train_loss[-1]:.4g}" in final and f"acc={hist.train_acc[-1]:.4g}" in final
    assert "it/s" not in err and "<" not in final  # no timings: reproducible text


def test_no_matplotlib_import():
    code = "import sys, mmedu.text, mmedu.training; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_bad_input():
    x, y = _blobs(n=8)
    model = nn.Linear(5, 3)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="epochs: expected an integer >= 1, got 0"):
        fit(model, loader, opt, epochs=0)
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module, got function"):
        evaluate(lambda b: b, loader)
    with pytest.raises(TypeError, match="optimizer: expected a torch.optim.Optimizer"):
        fit(model, loader, None)
    with pytest.raises(ValueError, match="expected at least one batch, got an empty loader"):
        evaluate(model, [])
    with pytest.raises(ValueError, match=r"batch: expected an \(x, y\) pair .* got a list of length 3"):
        evaluate(model, [[x, y, y]])
    with pytest.raises(ValueError, match="batch: expected a dict with a 'label' key"):
        default_forward(model, {"image": x})
    with pytest.raises(ValueError, match=r"loss_fn: expected a scalar tensor \(the batch mean\), got \(8,\)"):
        evaluate(model, [(x, y)], loss_fn=lambda o, t: F.cross_entropy(o, t, reduction="none"))
    with pytest.raises(FloatingPointError, match="the loss became nan at batch 0"):
        fit(model, [(x * float("nan"), y)], opt, progress=False)
