"""A small, explicit training loop: seeding, device choice, ``fit``, ``evaluate``, ``predict``.

Batch convention — a loader yields either

* ``(x, y)`` tuples: the model is called as ``model(x)`` and ``y`` is the target;
* dicts with a ``"label"`` key (what :class:`mmedu.datasets.MultimodalDataset` gives):
  the model is called with the dict of the other entries,
  ``model({"image": …, "audio": …})``, and ``batch["label"]`` is the target.

Every tensor of the batch is moved to the model's device first.  To call the model
any other way pass ``forward(model, batch) -> (output, target)``, e.g.
``forward=lambda m, b: (m(b["image"]), b["label"])``.

Metrics are epoch-level: the loss is the batch-size-weighted mean of the batch
losses (``loss_fn`` must return a batch mean, as torch losses do by default).
Accuracy is defined only for classification — ``output`` of shape ``(B, C)``
(logits) and an integer target of shape ``(B,)`` — and is ``nan`` otherwise.

The progress bar (one bar over epochs, :mod:`tqdm.auto`) shows no elapsed time or
rate and rounds its numbers, so a notebook re-run prints the same text.
"""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_positive_int

with warnings.catch_warnings():
    # Inside Jupyter without ipywidgets, tqdm.auto warns ("IProgress not found") with a
    # file path in the message, which would make notebook output machine-dependent;
    # it then falls back to the text bar, which is what we want anyway.
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

__all__ = ["set_seed", "get_device", "History", "fit", "evaluate", "predict", "default_forward"]

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


@dataclass
class History:
    """Epoch-level metrics recorded by :func:`fit`.

    ``train_loss[e]`` / ``train_acc[e]`` are the means over epoch ``e`` (taken while
    the weights were changing); ``val_loss`` / ``val_acc`` are measured after the
    epoch and stay empty when no ``val_loader`` was given.  Accuracies are ``nan``
    when the task is not classification.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[float]]:
        """A copy as ``{"train_loss": [...], "train_acc": [...], "val_loss": [...], "val_acc": [...]}``."""
        return asdict(self)

    def __len__(self) -> int:
        return len(self.train_loss)


def _to_device(obj, device: torch.device):
    """Move every tensor inside nested tuples/lists/dicts to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def default_forward(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
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


def fit(
    model: nn.Module,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn = F.cross_entropy,
    epochs: int = 1,
    *,
    val_loader: Iterable | None = None,
    device: str | torch.device | None = None,
    forward: Forward | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``.

    Parameters
    ----------
    model, optimizer : the module and an optimizer over its parameters.
    train_loader : iterable of batches (see the module docstring for the convention).
    loss_fn : ``loss_fn(output, target) -> scalar`` batch mean; default cross-entropy.
    epochs : number of passes.
    val_loader : evaluated with :func:`evaluate` after every epoch.
    device : where to train; ``None`` keeps the model where it is (the batches follow it).
    forward : ``forward(model, batch) -> (output, target)``; default :func:`default_forward`.
    progress : show one progress bar over the epochs, whose postfix holds the
        latest rounded loss / accuracy.  ``False`` shows nothing.
    desc : label for the bar.

    Returns
    -------
    History of epoch-level ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``.
    The model is left in ``eval()`` mode if a ``val_loader`` was given, else in ``train()`` mode.

    Raises ``FloatingPointError`` as soon as a batch loss is NaN or infinite.
    """
    epochs = check_positive_int(epochs, "epochs")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer: expected a torch.optim.Optimizer, got {type(optimizer).__name__}")
    device, forward = _prepare(model, device, forward, loss_fn)
    history = History()
    bar = tqdm(total=epochs, desc=desc, disable=not progress, leave=True, bar_format=_BAR_FORMAT)
    try:
        for epoch in range(epochs):
            model.train()
            loss, acc = _run_epoch(model, train_loader, forward, loss_fn, device, optimizer, f"train_loader (epoch {epoch})")
            history.train_loss.append(loss)
            history.train_acc.append(acc)
            shown = {"loss": loss, "acc": acc}
            if val_loader is not None:
                val = evaluate(model, val_loader, loss_fn=loss_fn, device=device, forward=forward)
                history.val_loss.append(val["loss"])
                history.val_acc.append(val["accuracy"])
                shown.update(val_loss=val["loss"], val_acc=val["accuracy"])
            bar.set_postfix_str(", ".join(f"{k}={v:.4g}" for k, v in shown.items() if not math.isnan(v)), refresh=False)
            bar.update(1)
    finally:
        bar.close()
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
