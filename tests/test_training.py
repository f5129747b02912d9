"""Tests for mmedu.training: seeding, device choice, fit/evaluate/predict behaviour."""

import copy
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

from mmedu.training import Batches, History, default_forward, evaluate, fit, get_device, predict, set_seed


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
    assert not model.training  # fit always hands the model back in eval() mode
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


# --------------------------------------------------------------------------- the one loop: steps, Batches, selection


def test_batches_reshuffle_each_pass_and_keep_rows_aligned():
    x = torch.arange(10.0)[:, None] * torch.ones(1, 3)
    y = torch.arange(10)
    batches = Batches(x, y, batch_size=4, seed=3)
    assert len(batches) == 3
    first, second = list(batches), list(batches)
    assert [len(b[1]) for b in first] == [4, 4, 2]
    assert all(torch.equal(bx[:, 0].long(), by) for bx, by in first)  # rows stay paired
    assert sorted(torch.cat([by for _, by in first]).tolist()) == list(range(10))
    assert not torch.equal(torch.cat([by for _, by in first]), torch.cat([by for _, by in second]))
    g = torch.Generator().manual_seed(3)
    want = torch.randperm(10, generator=g)
    assert torch.equal(torch.cat([by for _, by in first]), want)  # the documented permutation
    dropped = Batches(x, y, batch_size=4, seed=3, drop_last=True)
    assert len(dropped) == 2 and [len(b[1]) for b in dropped] == [4, 4]
    assert torch.equal(next(iter(Batches(y, batch_size=3, shuffle=False))), torch.tensor([0, 1, 2]))
    d = next(iter(Batches({"a": x, "b": y}, batch_size=2, seed=0)))
    assert set(d) == {"a", "b"} and torch.equal(d["a"][:, 0].long(), d["b"])


def test_batches_bad_input():
    with pytest.raises(ValueError, match=r"tensors: expected the same number of rows N, got \[3, 4\]"):
        Batches(torch.zeros(3), torch.zeros(4), batch_size=2)
    with pytest.raises(TypeError, match=r"tensors\[0\]: expected a tensor of shape \(N, ...\), got list"):
        Batches([1, 2], batch_size=1)
    with pytest.raises(ValueError, match="seed and generator: expected at most one of them, got both"):
        Batches(torch.zeros(3), batch_size=2, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="batch_size"):
        Batches(torch.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="expected at least one"):
        Batches(batch_size=2)


class _Regressor(nn.Module):
    # a model with its own training_step: fit uses it when no step is given
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def training_step(self, batch):
        x, y = batch
        err = self.lin(x)[:, 0] - y
        return {"loss": err.pow(2).mean(), "mae": err.abs().mean()}


def _regression(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3


def test_fit_with_a_step_is_the_hand_written_loop_bit_for_bit():
    x, y = _regression()
    torch.manual_seed(0)
    a = _Regressor()
    b = copy.deepcopy(a)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(5)
    losses = []
    for _ in range(3):  # the loop fit replaces: shuffle, step, record the epoch's mean
        total = 0.0
        for idx in torch.randperm(64, generator=g).split(16):
            loss = a.training_step((x[idx], y[idx]))["loss"]
            opt_a.zero_grad()
            loss.backward()
            opt_a.step()
            total += float(loss.detach()) * 16
        losses.append(total / 64)
    h = fit(b, Batches(x, y, batch_size=16, seed=5), torch.optim.SGD(b.parameters(), lr=0.05), epochs=3,
            progress=False)
    assert h["train_loss"] == losses and set(h) == {"train_loss", "train_mae"}
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    # an explicit step wins over training_step
    c = copy.deepcopy(b)
    h2 = fit(c, Batches(x, y, batch_size=16), torch.optim.SGD(c.parameters(), lr=0.0), epochs=1, progress=False,
             step=lambda m, batch: {"loss": m.lin(batch[0]).sum() * 0.0, "seen": 1.0})
    assert set(h2) == {"train_loss", "train_seen"} and h2.train_seen == [1.0]


def test_fit_val_fn_select_min_restores_the_best_epoch_and_records_val_keys():
    x, y = _regression()
    torch.manual_seed(0)
    model = _Regressor()
    states = []

    def val_fn(m):
        states.append(copy.deepcopy(m.state_dict()))
        return {"mse": [3.0, 1.0, 2.0, 1.0][len(states) - 1]}

    h = fit(model, Batches(x, y, batch_size=16), torch.optim.SGD(model.parameters(), lr=0.05), epochs=4,
            val_fn=val_fn, select="val_mse", mode="min", progress=False)
    assert h.best_epoch == 2 and h.val_mse == [3.0, 1.0, 2.0, 1.0] and len(h) == 4
    assert all(torch.equal(v, states[1][k]) for k, v in model.state_dict().items())
    assert not model.training
    # a step's val_loader: the step's numbers on held-out batches, without updates
    before = copy.deepcopy(model.state_dict())
    h = fit(model, Batches(x, y, batch_size=16), torch.optim.SGD(model.parameters(), lr=0.0), epochs=1,
            val_loader=Batches(x, y, batch_size=64, shuffle=False), progress=False)
    with torch.no_grad():
        want = model.training_step((x, y))
    assert h.val_loss == [pytest.approx(float(want["loss"]), rel=1e-6)] and "val_mae" in h
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fit_with_several_optimizers_lets_the_step_update():
    x, y = _regression()
    model = _Regressor()
    opts = {"w": torch.optim.SGD([model.lin.weight], lr=0.1), "b": torch.optim.SGD([model.lin.bias], lr=0.1)}
    calls = []

    def step(m, batch, optimizers):
        calls.append(sorted(optimizers))
        for name in ("w", "b"):  # two alternating updates, as a GAN's D and G
            loss = m.training_step(batch)["loss"]
            optimizers[name].zero_grad()
            loss.backward()
            optimizers[name].step()
        return {"loss": float(loss.detach())}

    h = fit(model, Batches(x, y, batch_size=32), opts, epochs=2, step=step, progress=False)
    assert calls == [["b", "w"]] * 4 and h.train_loss[1] < h.train_loss[0]


def test_fit_step_contract_errors():
    x, y = _regression(8)
    model = _Regressor()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = Batches(x, y, batch_size=4)
    with pytest.raises(ValueError, match=r"step: expected a scalar tensor under 'loss'.*got NoneType; keys \['mae'\]"):
        fit(model, data, opt, step=lambda m, b: {"mae": 1.0}, progress=False)
    with pytest.raises(TypeError, match="step: expected it to return a dict of losses, got float"):
        fit(model, data, opt, step=lambda m, b: 1.0, progress=False)
    with pytest.raises(TypeError, match="loss_fn and forward: expected None with a step"):
        fit(model, data, opt, F.mse_loss, progress=False)
    with pytest.raises(TypeError, match="optimizer: a dict of optimizers needs a step"):
        fit(nn.Linear(3, 1), data, {"a": opt}, progress=False)
    with pytest.raises(TypeError, match="optimizer: expected a torch.optim.Optimizer or a non-empty dict"):
        fit(model, data, {}, progress=False)
    with pytest.raises(ValueError, match="val_loader: a step with its own optimizers cannot be evaluated"):
        fit(model, data, {"a": opt}, step=lambda m, b, o: {}, val_loader=data, progress=False)
    with pytest.raises(ValueError, match=r"select: expected one of the recorded keys \['train_loss', 'train_mae'\], got 'val_x'"):
        fit(model, data, opt, select="val_x", progress=False)
    with pytest.raises(ValueError, match="mode"):
        fit(model, data, opt, select="train_loss", mode="best", progress=False)
    with pytest.raises(FloatingPointError, match="the loss became nan at batch 0"):
        fit(model, data, opt, step=lambda m, b: {"loss": m.lin(b[0]).sum() * float("nan")}, progress=False)
    with pytest.raises(ValueError, match=r"val_fn: returned the key\(s\) \['loss'\], which val_loader's results"):
        fit(nn.Linear(3, 2), [(x, y.long() % 2)], torch.optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1),
            val_loader=[(x, y.long() % 2)], val_fn=lambda m: {"loss": 0.0}, progress=False)


def test_history_reads_like_a_dict_and_by_attribute():
    h = History([1.0, 0.5], [0.2, 0.4])
    assert h["train_loss"] == h.train_loss == [1.0, 0.5] and len(h) == 2 and "val_acc" in h
    assert h.best_epoch is None and "epochs=2" in repr(h)
    with pytest.raises(KeyError, match=r"history: expected one of the keys \['train_loss'.*got 'loss'"):
        h["loss"]
    with pytest.raises(AttributeError, match="History has no record 'nope'"):
        h.nope
    e = History.empty()
    e.append("train_x", 1)
    assert e.as_dict() == {"train_x": [1.0]}
