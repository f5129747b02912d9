"""Input validation shared by every public function of :mod:`mmedu`.

Each check raises ``TypeError`` (wrong kind of object / dtype) or ``ValueError``
(wrong shape / value) with a message naming the argument, what was expected and
what was received, so that a student sees at once which call was wrong.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "check_scalar",
    "check_bool",
    "check_ndim",
    "check_finite",
    "check_finite_norms",
    "check_positive_int",
    "check_same_batch",
    "check_choice",
    "check_ranks",
]


def as_tensor(x, name: str, *, dtype: torch.dtype | None = None, floating: bool = False) -> torch.Tensor:
    """Return ``x`` as a ``torch.Tensor`` (NumPy arrays and nested lists are converted).

    ``floating=True`` requires a floating dtype (integers are converted to the
    default float dtype; booleans are refused). ``dtype`` casts the result.
    """
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, (np.ndarray, list, tuple, float, int, np.generic)):
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: expected a tensor or array of numbers, got {type(x).__name__} ({exc})") from None
    else:
        raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if floating:
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{name}: expected a real floating-point tensor, got dtype {t.dtype}")
        if not t.is_floating_point():
            t = t.to(torch.get_default_dtype())
    if dtype is not None:
        t = t.to(dtype)
    return t


def check_ndim(t: torch.Tensor, name: str, ndim: int | Sequence[int], shape_doc: str = "") -> None:
    """Raise ``ValueError`` unless ``t.ndim`` is ``ndim`` (or one of them)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if t.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        doc = f" {shape_doc}" if shape_doc else ""
        raise ValueError(f"{name}: expected a {want} tensor{doc}, got shape {tuple(t.shape)}")


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``t`` holds NaN or infinite values."""
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        n_bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name}: expected finite values, found {n_bad} NaN/inf entries")


def check_finite_norms(norms: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if a row norm overflowed to ``inf`` (finite entries, e.g. 1e20 in
    float32, whose squares do not fit the dtype): dividing by it would turn the row into zeros."""
    if not bool(torch.isfinite(norms).all()):
        rows = (~torch.isfinite(norms.reshape(norms.shape[0], -1))).any(dim=1).nonzero()[:, 0]
        raise ValueError(f"{name}: the norm of row {int(rows[0])} overflows {norms.dtype} ({rows.numel()} such rows): "
                         f"its entries are finite but too large; rescale the vectors or use float64")


def _type_name(v) -> str:
    """The type of ``v`` as a reader recognises it: ``float``, ``str``, ``numpy.bool``, ``torch.Tensor``."""
    t = type(v)
    module = t.__module__.split(".")[0]
    return t.__name__ if module == "builtins" else f"{module}.{t.__name__}"


def _interval(gt, ge, lt, le) -> str:
    low = f"({gt:g}" if gt is not None else f"[{ge:g}" if ge is not None else "(-inf"
    high = f"{lt:g})" if lt is not None else f"{le:g}]" if le is not None else "inf)"
    return f"{low}, {high}"


def check_scalar(v, name: str, *, gt: float | None = None, ge: float | None = None, lt: float | None = None,
                 le: float | None = None, tensor: bool = False) -> float:
    """Return the real number ``v`` as a ``float`` after checking its type, finiteness and range.

    Accepted: Python ints and floats, NumPy integer and floating scalars (``np.float32(0.1)``),
    any other :class:`numbers.Real`; with ``tensor=True`` also a one-element real tensor.
    Refused with ``TypeError``: booleans (``True`` is not a margin), strings, arrays, ``None``.
    Refused with ``ValueError``: NaN, ``±inf`` and values outside the interval given by
    ``gt``/``ge`` (lower bound, open/closed) and ``lt``/``le`` (upper bound), e.g.
    ``"temperature: expected a real number in (0, inf), got -1.0"``.
    """
    interval = _interval(gt, ge, lt, le)
    is_tensor = isinstance(v, torch.Tensor)
    if is_tensor:
        ok = tensor and v.numel() == 1 and v.dtype != torch.bool and not v.is_complex()
    else:
        ok = isinstance(v, (numbers.Real, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    if not ok:
        shown = f"tensor of shape {tuple(v.shape)} and dtype {v.dtype}" if is_tensor else f"{_type_name(v)} {v!r}"
        raise TypeError(f"{name}: expected a real number in {interval}, got {shown}")
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite real number in {interval}, got {x}")
    if ((gt is not None and not x > gt) or (ge is not None and not x >= ge)
            or (lt is not None and not x < lt) or (le is not None and not x <= le)):
        raise ValueError(f"{name}: expected a real number in {interval}, got {x}")
    return x


def check_bool(v, name: str) -> bool:
    """Return ``v`` as a ``bool``; ``True``/``False`` and NumPy booleans are accepted, anything
    else (``1``, ``"no"``, ``None``) is a ``TypeError`` naming what was given."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    raise TypeError(f"{name}: expected a bool (True or False), got {_type_name(v)} {v!r}")


def check_positive_int(v, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``v`` as an ``int`` after checking ``minimum <= v <= maximum``."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(v).__name__} ({v!r})")
    v = int(v)
    if v < minimum or (maximum is not None and v > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{name}: expected an integer >= {minimum}{upper}, got {v}")
    return v


def check_same_batch(tensors: Sequence[torch.Tensor], names: Sequence[str]) -> int:
    """Check all tensors share their first (batch) dimension; return it."""
    sizes = [t.shape[0] if t.ndim else None for t in tensors]
    if len(set(sizes)) != 1:
        listed = ", ".join(f"{n}: {s}" for n, s in zip(names, sizes))
        raise ValueError(f"expected the same batch size for every input, got {listed}")
    return int(sizes[0])


def check_choice(v, name: str, choices: Sequence) -> None:
    """Raise ``ValueError`` unless ``v`` is one of ``choices``."""
    if v not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {v!r}")


def check_ranks(ranks, bounds: Sequence[int], labels: Sequence[str], per: str) -> tuple[int, ...]:
    """Return one rank per entry of ``bounds``, each an int with ``1 <= ranks[i] <= bounds[i]``.

    An int means the same rank everywhere. ``labels[i]`` describes entry ``i`` in error
    messages (e.g. ``"mode of size 40"``) and ``per`` names what there is one rank per
    (e.g. ``"modality"``). Used by the Tucker decomposition and the Tucker fusion layer.
    """
    n = len(bounds)
    if isinstance(ranks, numbers.Integral) and not isinstance(ranks, bool):
        ranks = (int(ranks),) * n
    # A string is iterable but never a list of ranks.
    if isinstance(ranks, (str, bytes, bool)) or not hasattr(ranks, "__iter__"):
        raise TypeError(f"ranks: expected an int or a sequence of {n} ints, got {type(ranks).__name__}")
    ranks = list(ranks)
    if len(ranks) != n:
        raise ValueError(f"ranks: expected {n} ranks (one per {per}), got {len(ranks)}: {tuple(ranks)}")
    return tuple(
        check_positive_int(r, f"ranks[{i}] ({label})", maximum=bound)
        for i, (r, bound, label) in enumerate(zip(ranks, bounds, labels))
    )
