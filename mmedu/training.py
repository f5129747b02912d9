"""The course's one training loop, :func:`fit`, with seeding, device choice, ``evaluate`` and ``predict``.

Every model of the course trains through :func:`fit`: classifiers and fusion heads with the
supervised step, and every other model — the GANs, ACMR, the VAEs, the contrastive and
attention models — through a *step* that returns a dict of losses for one batch (the
model's ``training_step``, or a function the chapter writes).  The loop owns the rest:
optimizer updates, epochs, device, validation after each epoch, keeping the best epoch's
weights, one progress bar, and one :class:`History` that :func:`mmedu.plot.learning_curves`
draws.  :class:`Batches` shuffles tensors that sit in memory with a seeded generator.
Chapters write their own loop only where the loop itself is the lesson.

Batch convention of the supervised step — a loader yields either

* ``(x, y)`` tuples: the model is called as ``model(x)`` and ``y`` is the target;
* dicts with a ``"label"`` key (what :class:`mmedu.datasets.MultimodalDataset` gives):
  the model is called with the dict of the other entries,
  ``model({"image": …, "audio": …})``, and ``batch["label"]`` is the target.

Every tensor of the batch is moved to the model's device first.  To call the model
any other way pass ``forward(model, batch) -> (output, target)``, e.g.
``forward=lambda m, b: (m(b["image"]), b["label"])``.

Metrics are epoch-level: each recorded number is the batch-size-weighted mean of its batch
values (losses must be batch means, as torch losses are by default).
Accuracy is defined only for classification — ``output`` of shape ``(B, C)``
(logits) and an integer target of shape ``(B,)`` — and is ``nan`` otherwise.

The progress bar (one bar over epochs, :mod:`tqdm.auto`) shows no elapsed time or
rate and rounds its numbers, so a notebook re-run prints the same text.
"""

from __future__ import annotations

import math
import random
import warnings
import copy
from typing import Any, Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_bool, check_choice, check_positive_int

with warnings.catch_warnings():
    # Inside Jupyter without ipywidgets, tqdm.auto warns ("IProgress not found") with a
    # file path in the message, which would make notebook output machine-dependent;
    # it then falls back to the text bar, which is what we want anyway.
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

__all__ = ["set_seed", "get_device", "Batches", "History", "fit", "evaluate", "predict", "default_forward"]

Forward = Callable[[nn.Module, Any], "tuple[torch.Tensor, torch.Tensor]"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# A bar without elapsed time / rate: its final text is reproducible.
_BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} epochs{postfix}"


def set_seed(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and CUDA) with ``seed``.

    Returns a fresh ``torch.Generator`` seeded with ``seed`` — pass it to
    ``DataLoader(..., shuffle=True, generator=g)`` so the shuffling order is
    reproducible too.  Call it right before building the model so that the
    weight initialisation is reproducible.
    """
    seed = check_positive_int(seed, "seed", minimum=0, maximum=2**32 - 1)  # NumPy's limit
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to train on: CUDA if available, else CPU.

    ``prefer="cpu"`` forces the CPU; ``"cuda"`` / ``"cuda:1"`` / ``"mps"`` ask for that
    device and raise ``RuntimeError`` if it is not available here.
    """
    if prefer is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(prefer, (str, torch.device)):
        raise TypeError(f"prefer: expected a str such as 'cpu' or 'cuda', or None, got {type(prefer).__name__}")
    try:
        dev = torch.device(prefer)
    except RuntimeError:
        raise ValueError(f"prefer: expected one of 'cpu', 'cuda', 'cuda:N', 'mps', got {prefer!r}") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise RuntimeError(f"prefer={prefer!r}: CUDA is not available here (use 'cpu' or None)")
        if dev.index is not None and dev.index >= n:
            raise RuntimeError(f"prefer={prefer!r}: expected a CUDA index < {n}, got {dev.index}")
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise RuntimeError(f"prefer={prefer!r}: MPS is not available here (use 'cpu' or None)")
        return dev
    raise ValueError(f"prefer: expected one of 'cpu', 'cuda', 'cuda:N', 'mps', got {prefer!r}")


class History:
    """Per-epoch records of :func:`fit`: ``history["train_loss"]`` is a list with one float per epoch.

    Keys are ``"train_<name>"`` for the mean of a training quantity over the epoch (taken while
    the weights were changing) and ``"val_<name>"`` for a quantity measured after the epoch.
    The supervised step records ``train_loss``, ``train_acc``, ``val_loss`` and ``val_acc``
    (accuracies are ``nan`` when the task is not classification; ``val_*`` lists stay empty
    without a ``val_loader``); a ``step`` records what it returns, e.g. ``train_d_loss``.

    Read it like a dict (``history["val_acc"]``, ``"val_acc" in history``, ``history.keys()``)
    or by attribute (``history.val_acc``).  ``len(history)`` is the number of epochs and
    ``best_epoch`` the epoch (counted from 1) whose weights :func:`fit` kept when it was
    asked to ``select`` one, else ``None``.  :func:`mmedu.plot.learning_curves` draws it.
    """

    def __init__(self, train_loss: Sequence[float] = (), train_acc: Sequence[float] = (),
                 val_loss: Sequence[float] = (), val_acc: Sequence[float] = (),
                 **records: Sequence[float]) -> None:
        self._records: dict[str, list[float]] = {
            "train_loss": list(train_loss), "train_acc": list(train_acc),
            "val_loss": list(val_loss), "val_acc": list(val_acc),
        }
        for key, values in records.items():
            self._records[key] = list(values)
        self.best_epoch: int | None = None

    @classmethod
    def empty(cls) -> "History":
        """A history with no keys at all (the keys appear as :func:`fit` records them)."""
        h = cls()
        h._records.clear()
        return h

    def append(self, key: str, value: float) -> None:
        """Add one epoch's ``value`` under ``key`` (created on first use)."""
        self._records.setdefault(key, []).append(float(value))

    def as_dict(self) -> dict[str, list[float]]:
        """A copy as ``{key: [one float per epoch]}``."""
        return {k: list(v) for k, v in self._records.items()}

    def keys(self) -> KeysView[str]:
        return self._records.keys()

    def items(self) -> ItemsView[str, list[float]]:
        return self._records.items()

    def __getitem__(self, key: str) -> list[float]:
        try:
            return self._records[key]
        except KeyError:
            raise KeyError(f"history: expected one of the keys {list(self._records)}, got {key!r}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __iter__(self):
        return iter(self._records)

    def __getattr__(self, name: str) -> list[float]:
        records = self.__dict__.get("_records", {})
        if name in records:
            return records[name]
        raise AttributeError(f"History has no record {name!r} (its keys: {list(records)})")

    def __len__(self) -> int:
        return max((len(v) for k, v in self._records.items() if k.startswith("train_")), default=0)

    def __repr__(self) -> str:
        best = "" if self.best_epoch is None else f", best_epoch={self.best_epoch}"
        return f"History(epochs={len(self)}, keys={list(self._records)}{best})"


def _to_device(obj, device: torch.device):
    """Move every tensor inside nested tuples/lists/dicts to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def default_forward(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` → ``(model(x), y)``; ``{"label": y, **inputs}`` → ``(model(inputs), y)``."""
    if isinstance(batch, dict):
        if "label" not in batch:
            raise ValueError(f"batch: expected a dict with a 'label' key, got keys {sorted(batch)}")
        return model({k: v for k, v in batch.items() if k != "label"}), batch["label"]
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        x, y = batch
        return model(x), y
    got = f"a {type(batch).__name__} of length {len(batch)}" if isinstance(batch, (tuple, list)) else type(batch).__name__
    raise ValueError(f"batch: expected an (x, y) pair or a dict with a 'label' key, got {got} (pass forward=...)")


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _prepare(model, device, forward, loss_fn):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if device is None:
        device = _model_device(model)
    else:
        device = torch.device(device)
        model.to(device)  # in place: an optimizer built before still holds the same parameters
    forward = default_forward if forward is None else forward
    if not callable(forward):
        raise TypeError(f"forward: expected a callable forward(model, batch) -> (output, target), got {type(forward).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a callable loss_fn(output, target), got {type(loss_fn).__name__}")
    return device, forward


def _batch_size(target) -> int:
    return int(target.shape[0]) if isinstance(target, torch.Tensor) and target.ndim > 0 else 1


def _n_correct(output: torch.Tensor, target) -> int | None:
    """Number of correct argmax predictions, or None when this is not classification."""
    if (
        isinstance(output, torch.Tensor)
        and isinstance(target, torch.Tensor)
        and output.ndim == 2
        and target.ndim == 1
        and output.shape[0] == target.shape[0]
        and not target.is_floating_point()
        and not target.is_complex()
        and target.dtype != torch.bool
    ):
        return int((output.argmax(dim=1) == target).sum())
    return None


def _run_epoch(model, loader, forward, loss_fn, device, optimizer=None, where="loader") -> tuple[float, float]:
    """One pass over ``loader``; trains when ``optimizer`` is given. Returns (loss, accuracy)."""
    total_loss, n_seen, n_correct, classification = 0.0, 0, 0, True
    for i, batch in enumerate(loader):
        output, target = forward(model, _to_device(batch, device))
        if isinstance(target, torch.Tensor) and isinstance(output, torch.Tensor):
            target = target.to(output.device)
        loss = loss_fn(output, target)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"loss_fn: expected a scalar tensor (the batch mean), got {shape}")
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(
                f"the loss became {value} at batch {i} of {where} (a learning rate too large? NaN inputs?)"
            )
        b = _batch_size(target)
        total_loss += value * b
        n_seen += b
        correct = _n_correct(output.detach(), target) if classification else None
        if correct is None:
            classification = False
        else:
            n_correct += correct
    if n_seen == 0:
        raise ValueError(f"{where}: expected at least one batch, got an empty loader")
    return total_loss / n_seen, (n_correct / n_seen if classification else math.nan)


class Batches:
    """Minibatches of row-aligned tensors, reshuffled at every pass by one seeded generator.

    ``Batches(x, y, batch_size=128, seed=0)`` yields ``(x[idx], y[idx])`` for consecutive
    slices ``idx`` of ``torch.randperm(N, generator=batches.generator)``, a new permutation each
    time it is iterated (each epoch); a single tensor yields ``x[idx]``, a dict of tensors
    yields ``{name: t[idx]}``.  It is the loader :func:`fit` uses for tensors that already sit
    in memory (a ``DataLoader`` works too).

    Args:
        *tensors: ``(N, ...)`` tensors with the same first dimension, or one dict of them.
        batch_size: rows per batch.
        seed: seeds ``batches.generator`` (a local ``torch.Generator``; no global RNG is touched).
        generator: an existing generator instead of ``seed`` (e.g. one also used for dropout).
        shuffle: ``False`` keeps the rows in order.
        drop_last: drop the last, smaller batch (so every batch has ``batch_size`` rows).

    The step may use ``batches.generator`` for its own random draws (modality dropout, the VAE's
    reparameterisation); they then interleave with the shuffling reproducibly.
    """

    def __init__(self, *tensors: torch.Tensor | Mapping[str, torch.Tensor], batch_size: int, seed: int | None = None,
                 generator: torch.Generator | None = None, shuffle: bool = True,
                 drop_last: bool = False) -> None:
        if len(tensors) == 1 and isinstance(tensors[0], Mapping):
            self._names: list[str] | None = list(tensors[0])
            tensors = tuple(tensors[0].values())
        else:
            self._names = None
        if not tensors:
            raise ValueError("tensors: expected at least one (N, ...) tensor, got none")
        for i, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor) or t.ndim == 0:
                got = f"a {t.ndim}-d tensor" if isinstance(t, torch.Tensor) else type(t).__name__
                raise TypeError(f"tensors[{i}]: expected a tensor of shape (N, ...), got {got}")
        n = int(tensors[0].shape[0])
        if any(int(t.shape[0]) != n for t in tensors):
            raise ValueError(f"tensors: expected the same number of rows N, got {[int(t.shape[0]) for t in tensors]}")
        self.tensors = tensors
        self.n = n
        self.batch_size = check_positive_int(batch_size, "batch_size", maximum=max(n, 1))
        if seed is not None and generator is not None:
            raise ValueError("seed and generator: expected at most one of them, got both")
        if generator is None:
            seed = 0 if seed is None else check_positive_int(seed, "seed", minimum=0, maximum=2**63 - 1)
            generator = torch.Generator().manual_seed(seed)
        elif not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
        self.generator = generator
        self.shuffle = check_bool(shuffle, "shuffle")
        self.drop_last = check_bool(drop_last, "drop_last")

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator:
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        stop = len(self) * self.batch_size
        for start in range(0, min(stop, self.n), self.batch_size):
            idx = order[start:start + self.batch_size]
            rows = [t[idx.to(t.device)] for t in self.tensors]
            if self._names is not None:
                yield dict(zip(self._names, rows))
            else:
                yield rows[0] if len(rows) == 1 else tuple(rows)

    def __repr__(self) -> str:
        return (f"Batches(n={self.n}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last})")


Step = Callable[..., Mapping[str, Any]]


def _first_tensor(obj) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj
    values = obj.values() if isinstance(obj, Mapping) else obj if isinstance(obj, (list, tuple)) else ()
    for v in values:
        t = _first_tensor(v)
        if t is not None:
            return t
    return None


def _step_epoch(model, loader, step, device, optimizer, manual: bool, where: str) -> dict[str, float]:
    """One pass of a ``step`` over ``loader``: batch-size-weighted means of what it returns."""
    totals: dict[str, float] = {}
    n_seen = 0
    for i, batch in enumerate(loader):
        batch = _to_device(batch, device)
        out = step(model, batch, optimizer) if manual else step(model, batch)
        if not isinstance(out, Mapping):
            raise TypeError(f"step: expected it to return a dict of losses, got {type(out).__name__}")
        if not manual and optimizer is not None:
            loss = out.get("loss")
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
                raise ValueError(f"step: expected a scalar tensor under 'loss' (what the optimizer minimises), "
                                 f"got {got}; keys {sorted(out)}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        first = _first_tensor(batch)
        b = int(first.shape[0]) if first is not None and first.ndim > 0 else 1
        for k, v in out.items():
            value = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
            if k == "loss" and not math.isfinite(value):
                raise FloatingPointError(
                    f"the loss became {value} at batch {i} of {where} (a learning rate too large? NaN inputs?)"
                )
            totals[k] = totals.get(k, 0.0) + value * b
        n_seen += b
    if n_seen == 0:
        raise ValueError(f"{where}: expected at least one batch, got an empty loader")
    return {k: v / n_seen for k, v in totals.items()}


def _check_optimizer(optimizer) -> bool:
    """True for a mapping of optimizers (the step updates the weights itself)."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return False
    if isinstance(optimizer, Mapping) and optimizer and all(
            isinstance(o, torch.optim.Optimizer) for o in optimizer.values()):
        return True
    raise TypeError("optimizer: expected a torch.optim.Optimizer or a non-empty dict of them "
                    f"(one per part of the model), got {type(optimizer).__name__}")


def fit(
    model: nn.Module,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer],
    loss_fn: LossFn | None = None,
    epochs: int = 1,
    *,
    step: Step | None = None,
    val_loader: Iterable | None = None,
    val_fn: Callable[[nn.Module], Mapping[str, float]] | None = None,
    select: str | None = None,
    mode: str = "max",
    device: str | torch.device | None = None,
    forward: Forward | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``: the course's one training loop.

    **What one batch does** is decided by the first that applies:

    1. ``step(model, batch) -> {"loss": scalar tensor, ...}``: the loop minimises ``"loss"``
       (``zero_grad``, ``backward``, ``step`` of ``optimizer``) and records every entry;
    2. the model's own ``model.training_step(batch)`` with the same contract
       (:class:`mmedu.vae.VAE`, :class:`mmedu.adversarial.ACMR` … define one);
    3. the supervised step: ``output, target = forward(model, batch)`` (default
       :func:`default_forward`), minimise ``loss_fn(output, target)`` (default cross-entropy),
       record the loss and, for ``(B, C)`` logits with integer targets, the accuracy.

    With **several optimizers** (a dict, e.g. a GAN's ``{"generator": …, "discriminator": …}``)
    the step updates the weights itself: it is called ``step(model, batch, optimizers)`` (or
    ``model.training_step(batch, optimizers)``) and returns the numbers to record.

    **Validation**, after every epoch, in ``eval()`` mode without gradients: ``val_loader``
    (the supervised step's loss and accuracy, or a ``step``'s outputs, recorded as ``val_*``)
    and/or ``val_fn(model) -> {name: float}`` (recorded as ``val_<name>``, e.g. a retrieval
    metric).  ``select="val_R@10"`` keeps the weights of the epoch where that record is best
    (``mode="max"`` or ``"min"``; the earliest of equal values), restores them at the end and
    sets ``history.best_epoch``.

    Args:
        model: the module to train, in place.
        train_loader: an iterable of batches, iterated once per epoch (a ``DataLoader``, or
            :class:`Batches` for tensors in memory).
        optimizer: an optimizer over the model's parameters, or a dict of them (see above).
        loss_fn: ``loss_fn(output, target) -> scalar`` batch mean, for the supervised step only.
        epochs: number of passes.
        step: ``step(model, batch) -> dict`` (see above).
        val_loader, val_fn, select, mode: validation and best-epoch selection (see above).
        device: where to train; ``None`` keeps the model where it is (batches follow it).
        forward: ``forward(model, batch) -> (output, target)`` for the supervised step.
        progress: one progress bar over the epochs, whose postfix shows the latest rounded
            values; ``False`` shows nothing.
        desc: label for the bar.

    Returns:
        A :class:`History` of per-epoch means.  The model is left in ``eval()`` mode.

    Raises ``FloatingPointError`` as soon as a batch's loss is NaN or infinite.
    """
    epochs = check_positive_int(epochs, "epochs")
    manual = _check_optimizer(optimizer)
    if step is not None and not callable(step):
        raise TypeError(f"step: expected a callable step(model, batch) -> dict of losses, got {type(step).__name__}")
    if step is None and callable(getattr(model, "training_step", None)):
        step = lambda m, *args: m.training_step(*args)  # noqa: E731
    supervised = step is None
    if supervised and manual:
        raise TypeError("optimizer: a dict of optimizers needs a step that updates the weights itself "
                        "(step=... or model.training_step), got none")
    if not supervised and (loss_fn is not None or forward is not None):
        raise TypeError("loss_fn and forward: expected None with a step (they define the supervised step), "
                        f"got loss_fn={loss_fn!r}, forward={forward!r}")
    if manual and val_loader is not None:
        raise ValueError("val_loader: a step with its own optimizers cannot be evaluated on a loader "
                         "(it would update the weights); pass val_fn instead")
    if val_fn is not None and not callable(val_fn):
        raise TypeError(f"val_fn: expected a callable model -> dict of floats, got {type(val_fn).__name__}")
    check_choice(mode, "mode", ["max", "min"])
    loss_fn = F.cross_entropy if loss_fn is None else loss_fn
    device, forward = _prepare(model, device, forward, loss_fn)
    history = History() if supervised else History.empty()
    best_value, best_state = math.nan, None
    bar = tqdm(total=epochs, desc=desc, disable=not progress, leave=True, bar_format=_BAR_FORMAT)
    try:
        for epoch in range(epochs):
            model.train()
            where = f"train_loader (epoch {epoch})"
            if supervised:
                loss, acc = _run_epoch(model, train_loader, forward, loss_fn, device, optimizer, where)
                train = {"loss": loss, "acc": acc}
            else:
                train = _step_epoch(model, train_loader, step, device, optimizer, manual, where)
            for k, v in train.items():
                history.append(f"train_{k}", v)
            shown = dict(train)
            val: dict[str, float] = {}
            if val_loader is not None or val_fn is not None:
                model.eval()
                with torch.no_grad():
                    if val_loader is not None and supervised:
                        loss, acc = _run_epoch(model, val_loader, forward, loss_fn, device, None, "val_loader")
                        val.update(loss=loss, accuracy=acc)
                    elif val_loader is not None:
                        val.update(_step_epoch(model, val_loader, step, device, None, False, "val_loader"))
                    if val_fn is not None:
                        out = val_fn(model)
                        if not isinstance(out, Mapping):
                            raise TypeError(f"val_fn: expected it to return a dict of floats, got {type(out).__name__}")
                        clash = sorted(set(out) & set(val))
                        if clash:
                            raise ValueError(f"val_fn: returned the key(s) {clash}, which val_loader's results "
                                             "already use; give them other names")
                        val.update({k: float(v) for k, v in out.items()})
                for k, v in val.items():
                    history.append(f"val_{'acc' if supervised and k == 'accuracy' else k}", v)
                shown.update({f"val_{k if k != 'accuracy' else 'acc'}": v for k, v in val.items()})
            if select is not None:
                if select not in history:
                    raise ValueError(f"select: expected one of the recorded keys {list(history.keys())}, got {select!r}")
                value = history[select][-1]
                better = value > best_value if mode == "max" else value < best_value
                if best_state is None and not math.isnan(value) or better:
                    best_value, best_state = value, copy.deepcopy(model.state_dict())
                    history.best_epoch = epoch + 1
            bar.set_postfix_str(", ".join(f"{k}={v:.4g}" for k, v in shown.items() if not math.isnan(v)), refresh=False)
            bar.update(1)
    finally:
        bar.close()
    if select is not None and best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    loss_fn: LossFn = F.cross_entropy,
    device: str | torch.device | None = None,
    forward: Forward | None = None,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over ``loader``, without changing it.

    Sets ``model.eval()`` (dropout off, batch-norm running statistics frozen; the
    model stays in eval mode) and runs under ``torch.no_grad()``.

    Returns ``{"loss": float, "accuracy": float}``; ``accuracy`` is ``nan`` unless
    the outputs are ``(B, C)`` logits with integer ``(B,)`` targets.
    """
    device, forward = _prepare(model, device, forward, loss_fn)
    model.eval()
    with torch.no_grad():
        loss, acc = _run_epoch(model, loader, forward, loss_fn, device, None, "loader")
    return {"loss": loss, "accuracy": acc}


def predict(
    model: nn.Module,
    loader: Iterable,
    *,
    device: str | torch.device | None = None,
    forward: Forward | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs and targets of every batch, concatenated: ``(N, …)`` and ``(N, …)``.

    Eval mode and ``no_grad`` as in :func:`evaluate`; the tensors stay on the
    device that computed them (``.cpu()`` them for NumPy / plotting).
    """
    device, forward = _prepare(model, device, forward, F.cross_entropy)
    model.eval()
    outputs, targets = [], []
    with torch.no_grad():
        for batch in loader:
            out, tgt = forward(model, _to_device(batch, device))
            outputs.append(out)
            targets.append(torch.as_tensor(tgt).to(out.device))
    if not outputs:
        raise ValueError("loader: expected at least one batch, got an empty loader")
    return torch.cat(outputs), torch.cat(targets)
