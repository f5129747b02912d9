"""Figures used across the chapters: image grids, spectrograms, learning curves, bars, 2-D embeddings.

The only :mod:`mmedu` module that imports matplotlib.  Every function

* draws into ``ax`` when one is given, otherwise into a new pyplot figure;
* returns the :class:`matplotlib.figure.Figure` it drew into (``ax.figure`` when
  ``ax`` was given) — never an Axes, never prints;
* accepts torch tensors (any device) or NumPy arrays.

In a notebook end the plotting line with ``;`` (``image_grid(x);``): a returned
figure is displayed both as the cell's value and by the inline backend.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import MaxNLocator

from ._checks import as_tensor, check_finite, check_ndim, check_positive_int, check_scalar

if TYPE_CHECKING:  # for the annotations only: plotting does not import the training code
    from .training import History

__all__ = ["image_grid", "spectrogram", "learning_curves", "bar_table", "embedding_2d", "box", "arrow"]


def _numpy(x, name: str, ndim, shape_doc: str) -> np.ndarray:
    t = as_tensor(x, name, floating=True)
    check_ndim(t, name, ndim, shape_doc)
    check_finite(t, name)
    return t.detach().cpu().numpy()


def _check_ax(ax) -> None:
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")


def _labels_list(labels, n: int, name: str) -> list:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().tolist()
    elif isinstance(labels, np.ndarray):
        labels = labels.tolist()
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"{name}: expected a sequence of {n} labels, got {type(labels).__name__}")
    if len(labels) != n:
        raise ValueError(f"{name}: expected {n} entries (one per item), got {len(labels)}")
    return list(labels)


def image_grid(
    images: torch.Tensor | np.ndarray,
    labels: Sequence | torch.Tensor | np.ndarray | None = None,
    ncols: int = 10,
    titles: Sequence[str] | None = None,
    ax: Axes | None = None,
    cmap: str = "gray",
) -> Figure:
    """Tile ``images`` row by row into one picture, each tile captioned by its label/title.

    Parameters
    ----------
    images : (N, 1, H, W), (N, 3, H, W) or (N, H, W)
        Grayscale tiles share one colour scale (the min/max over all of them); RGB
        tiles must hold values in [0, 1].
    labels : N values or None
        Written above each tile.
    ncols : tiles per row.
    titles : N strings or None
        Written above each tile (after the label when both are given).
    ax, cmap : target Axes; colormap for grayscale images.

    Returns
    -------
    The Figure; the mosaic is a single image in a single Axes (so the grid also
    works inside a subplot), with one text per captioned tile.
    """
    x = _numpy(images, "images", (3, 4), "(N, 1, H, W), (N, 3, H, W) or (N, H, W)")
    if x.ndim == 4:
        if x.shape[1] not in (1, 3):
            raise ValueError(f"images: expected 1 or 3 channels in (N, C, H, W), got shape {x.shape}")
        x = x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)
    n, h, w = x.shape[:3]
    if n == 0:
        raise ValueError("images: expected at least one image, got N = 0")
    ncols = min(check_positive_int(ncols, "ncols"), n)
    _check_ax(ax)
    captions = [""] * n
    if labels is not None:
        captions = [str(v) for v in _labels_list(labels, n, "labels")]
    if titles is not None:
        titles = [str(t) for t in _labels_list(titles, n, "titles")]
        captions = [f"{c}: {t}" if c else t for c, t in zip(captions, titles)]
    captioned = any(captions)

    nrows = math.ceil(n / ncols)
    gap = 2
    band = max(h // 3, 6) if captioned else 0  # room above each row for its captions
    cell_h, cell_w = h + gap + band, w + gap
    rgb = x.ndim == 4
    canvas = np.full((nrows * cell_h - gap, ncols * cell_w - gap) + ((3,) if rgb else ()), np.nan)
    for i in range(n):
        r, c = divmod(i, ncols)
        top, left = r * cell_h + band, c * cell_w
        canvas[top : top + h, left : left + w] = x[i]

    if ax is None:
        width = 0.75 * ncols
        fig, ax = plt.subplots(figsize=(width, width * canvas.shape[0] / canvas.shape[1]))
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99)
    if rgb:
        if np.nanmin(x) < 0 or np.nanmax(x) > 1:
            raise ValueError(f"images: expected RGB values in [0, 1], got [{x.min():.3g}, {x.max():.3g}]")
        ax.imshow(np.where(np.isnan(canvas), 1.0, canvas), interpolation="nearest")
    else:
        lo, hi = float(x.min()), float(x.max())
        colormap = plt.get_cmap(cmap).with_extremes(bad="white")
        ax.imshow(np.ma.masked_invalid(canvas), cmap=colormap, vmin=lo, vmax=hi if hi > lo else lo + 1,
                  interpolation="nearest")
    for i, text in enumerate(captions):
        if text:
            r, c = divmod(i, ncols)
            ax.text(c * cell_w + w / 2, r * cell_h + band - 1, text, ha="center", va="bottom", fontsize=7)
    ax.set_axis_off()
    return ax.figure


def spectrogram(
    logmel: torch.Tensor | np.ndarray,
    sample_rate: int = 8000,
    hop_length: int = 128,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Show one log-mel spectrogram ``(n_mels, T)`` with time in seconds and a colour bar.

    Frame ``t`` is centred at ``t * hop_length / sample_rate`` seconds (the centred
    framing of :mod:`mmedu.audio`); the vertical axis is the mel-bin index (low
    frequencies at the bottom).
    """
    s = _numpy(logmel, "logmel", 2, "(n_mels, T) (for one clip of a batch pass logmel[i])")
    sample_rate = check_positive_int(sample_rate, "sample_rate")
    hop_length = check_positive_int(hop_length, "hop_length")
    _check_ax(ax)
    n_mels, n_frames = s.shape
    dt = hop_length / sample_rate
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 2.8), layout="constrained")
    im = ax.imshow(s, origin="lower", aspect="auto", interpolation="nearest",
                   extent=(-dt / 2, (n_frames - 0.5) * dt, -0.5, n_mels - 0.5))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel bin")
    if title is not None:
        ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, label="log mel energy")
    return ax.figure


def _history_dict(h, name: str) -> dict[str, list[float]]:
    """``{key: [float per epoch]}`` of a History or a mapping of ``train_*`` / ``val_*`` lists."""
    if hasattr(h, "as_dict"):
        h = h.as_dict()
    if not isinstance(h, Mapping) or not any(str(k).startswith("train_") for k in h):
        raise TypeError(f"{name}: expected a History or a dict with 'train_<name>' lists (e.g. 'train_loss'), "
                        f"got {type(h).__name__}")
    out = {str(k): [float(v) for v in values] for k, values in h.items()}
    n = max(len(v) for k, v in out.items() if k.startswith("train_"))
    if n == 0:
        raise ValueError(f"{name}: expected at least one epoch in the train_* lists, got none")
    for key, values in out.items():
        if values and len(values) != n:
            raise ValueError(f"{name}: expected {key} to be empty or have one value per epoch ({n}), got {len(values)}")
    return out


def _quantities(runs: Mapping[str, Mapping[str, list[float]]]) -> list[str]:
    """The quantities recorded (``loss`` of ``train_loss``/``val_loss`` …), in order, all-NaN ones left out."""
    names: list[str] = []
    for r in runs.values():
        for key, values in r.items():
            q = key.split("_", 1)[1] if key.startswith(("train_", "val_")) else None
            if q and q not in names and values and not all(math.isnan(v) for v in values):
                names.append(q)
    return names


_YLABELS = {"loss": "loss", "acc": "accuracy"}


def learning_curves(history_or_dict: History | Mapping[str, Any],
                    ax: Axes | Sequence[Axes] | np.ndarray | None = None,
                    keys: Sequence[str] | None = None) -> Figure:
    """One panel per recorded quantity against the epoch; training solid, validation dashed.

    A classifier's :class:`~mmedu.training.History` gives two panels, loss and accuracy; a
    GAN's gives its discriminator and generator losses on separate axes (their scales and
    signs differ), and a validation metric (``val_R@10``) gets its own panel.

    Parameters
    ----------
    history_or_dict : a :class:`mmedu.training.History`, its ``as_dict()`` (keys
        ``train_<name>`` / ``val_<name>``), or a mapping ``{run name: history}`` to compare
        several runs (one colour each).
    ax : None (a new figure, one panel per quantity), one Axes (the first quantity only)
        or a sequence of Axes (one per quantity, in order).
    keys : the quantities to draw, e.g. ``["d_loss", "g_loss"]``; default: every one
        recorded, except those that are ``nan`` throughout (accuracy of a regression).
    """
    if isinstance(history_or_dict, Mapping) and not any(str(k).startswith("train_") for k in history_or_dict):
        if not history_or_dict:
            raise ValueError("history_or_dict: expected at least one run, got an empty mapping")
        runs = {str(k): _history_dict(v, f"history_or_dict[{k!r}]") for k, v in history_or_dict.items()}
    else:
        runs = {"": _history_dict(history_or_dict, "history_or_dict")}
    recorded = _quantities(runs)
    if keys is None:
        quantities = recorded
    else:
        if isinstance(keys, str) or not isinstance(keys, Sequence) or not keys:
            raise TypeError(f"keys: expected a non-empty list of quantity names, got {keys!r}")
        unknown = [k for k in keys if k not in recorded]
        if unknown:
            raise ValueError(f"keys: expected names among the recorded quantities {recorded}, got {unknown}")
        quantities = list(keys)

    if ax is None:
        n = len(quantities)
        cols = min(n, 3)
        rows = -(-n // cols)
        fig, axes_grid = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False,
                                      layout="constrained")
        axes = list(axes_grid.flat)
        for extra in axes[n:]:
            extra.remove()
        axes = axes[:n]
    elif isinstance(ax, Axes):
        axes = [ax]
    elif isinstance(ax, (Sequence, np.ndarray)) and len(ax) >= 1 and all(isinstance(a, Axes) for a in ax):
        axes = list(ax)  # a list, tuple or the array that plt.subplots(1, n) returns
        if len(axes) > len(quantities):
            raise ValueError(f"ax: expected at most {len(quantities)} Axes (one per quantity {quantities}), "
                             f"got {len(axes)}")
    else:
        raise TypeError(f"ax: expected None, an Axes or a sequence of Axes, got {type(ax).__name__}")

    for q, a in zip(quantities, axes):
        for i, (name, r) in enumerate(runs.items()):
            color = f"C{i}"
            prefix = f"{name} " if name else ""
            for split, style in (("train", "-"), ("val", "--")):
                values = r.get(f"{split}_{q}", [])
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    a.plot(epochs, values, style, color=color, marker="o", markersize=3, label=f"{prefix}{split}")
        a.set_xlabel("epoch")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.set_ylabel(_YLABELS.get(q, q))
        a.legend(fontsize=9)
    return axes[0].figure


def _is_number(v) -> bool:
    if isinstance(v, torch.Tensor):
        return v.numel() == 1 and not v.dtype == torch.bool
    return isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))


def bar_table(
    values: Mapping,
    ax: Axes | None = None,
    ylabel: str = "accuracy",
    fmt: str = "{:.3f}",
    ylim: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Bar chart of a results table, each bar labelled with its value.

    Parameters
    ----------
    values : ``{name: number}`` — one bar per name; or ``{group: {series: number}}``
        — grouped bars (e.g. fusion method × test condition), one colour per series.
    ylabel, fmt, title : axis label, format of the value written on each bar, title.
    ylim : y-range; default ``(0, 1)`` when every value lies in [0, 1] (accuracies).
    """
    if not isinstance(values, Mapping) or not values:
        raise TypeError(f"values: expected a non-empty dict {{name: number}}, got {type(values).__name__} {values!r}")
    grouped = all(isinstance(v, Mapping) for v in values.values())
    if grouped:
        groups = [str(g) for g in values]
        series = list(dict.fromkeys(str(s) for v in values.values() for s in v))
        table = {s: [values[g].get(s, np.nan) for g in values] for s in series}
    elif not any(isinstance(v, Mapping) for v in values.values()):
        groups, table = [str(k) for k in values], {"": list(values.values())}
    else:
        raise TypeError("values: expected all values to be numbers or all to be dicts {series: number}, got a mix")
    for s, vs in table.items():
        for g, v in zip(groups, vs):
            if not _is_number(v):
                raise TypeError(f"values[{g!r}]{f'[{s!r}]' if s else ''}: expected a number, got {type(v).__name__}")
    table = {s: [float(v) for v in vs] for s, vs in table.items()}
    _check_ax(ax)
    if ax is None:
        fig, ax = plt.subplots(
            figsize=(max(3.0, 0.9 * len(groups) * max(1, len(table) * 0.6) + 1), 3.2), layout="constrained"
        )

    x = np.arange(len(groups))
    width = 0.8 / len(table)
    for i, (s, vs) in enumerate(table.items()):
        bars = ax.bar(x - 0.4 + width * (i + 0.5), vs, width, label=s or None, color=f"C{i}")
        ax.bar_label(bars, labels=["" if math.isnan(v) else fmt.format(v) for v in vs], fontsize=9, padding=1)
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    finite = [v for vs in table.values() for v in vs if not math.isnan(v)]
    if ylim is None and finite and 0 <= min(finite) and max(finite) <= 1:
        ylim = (0.0, 1.05)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if grouped:
        ax.legend(fontsize=9)
    if title is not None:
        ax.set_title(title)
    return ax.figure


def embedding_2d(
    points: torch.Tensor | np.ndarray,
    labels: Sequence | torch.Tensor | np.ndarray,
    ax: Axes | None = None,
    marker: str = "o",
    title: str | None = None,
    name: str | None = None,
) -> Figure:
    """Scatter 2-D embeddings ``(N, 2)`` coloured by their class ``labels`` ``(N,)``.

    Integer label ``k`` always gets colour ``C{k mod 10}``, so two calls on one
    ``ax`` (e.g. image embeddings with ``marker="o"`` and audio embeddings with
    ``marker="x"``, ``name="image"`` / ``name="audio"``) share their colours.
    Draws one scatter per class (legend entry ``"{name} {label}"``).
    """
    p = _numpy(points, "points", 2, "(N, 2)")
    if p.shape[1] != 2:
        raise ValueError(f"points: expected shape (N, 2), got {p.shape} (reduce with PCA/t-SNE first)")
    lab = _labels_list(labels, p.shape[0], "labels")
    _check_ax(ax)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    classes = sorted(set(lab), key=lambda v: (str(type(v)), v))
    lab_arr = np.asarray(lab, dtype=object)
    for j, k in enumerate(classes):
        idx = lab_arr == k
        color = f"C{int(k) % 10}" if isinstance(k, (int, np.integer)) else f"C{j % 10}"
        text = f"{name} {k}" if name else str(k)
        ax.scatter(p[idx, 0], p[idx, 1], s=12, marker=marker, color=color, label=text, alpha=0.8)
    # outside the data area: a second call on the same ax re-draws it with every entry
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if title is not None:
        ax.set_title(title)
    return ax.figure


# --------------------------------------------------------------------------- schematics


def _require_ax(ax) -> None:
    if not isinstance(ax, Axes):
        raise TypeError(f"ax: expected a matplotlib Axes, got {type(ax).__name__}")


def _point(xy, name: str) -> tuple[float, float]:
    if (isinstance(xy, (str, bytes)) or not isinstance(xy, Sequence) or len(xy) != 2
            or not all(_is_number(v) and math.isfinite(float(v)) for v in xy)):
        raise TypeError(f"{name}: expected a point (x, y) of two finite numbers, got {xy!r}")
    return float(xy[0]), float(xy[1])


def box(ax: Axes, xy: Sequence[float], text: str, color: str = "white", *, width: float = 1.5,
        height: float = 0.55, fontsize: float = 9) -> Figure:
    """A labelled, rounded box centred at ``xy`` in data coordinates: one block of a schematic.

    The chapters draw their architecture diagrams (fusion wirings, the GAN, the VAEs, attention)
    from :func:`box` and :func:`arrow` on an Axes with its axis turned off.

    Args:
        ax: the Axes to draw into.
        xy: the centre ``(x, y)``.
        text: the label (mathtext such as ``"$\\mathbf{W}$"`` works).
        color: the fill colour.
        width, height: the box's size in data units (> 0).
        fontsize: the label's size in points.
    """
    _require_ax(ax)
    x, y = _point(xy, "xy")
    for v, name in ((width, "width"), (height, "height"), (fontsize, "fontsize")):
        check_scalar(v, name, gt=0)
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.0,rounding_size=0.06", fc=color, ec="0.3", lw=0.9))
    ax.text(x, y, str(text), ha="center", va="center", fontsize=fontsize)
    return ax.figure


def arrow(ax: Axes, start: Sequence[float], end: Sequence[float], text: str = "", *, color: str = "0.3",
          fontsize: float = 9) -> Figure:
    """An arrow from ``start`` to ``end`` (data coordinates), with an optional label at its middle.

    Args:
        ax: the Axes to draw into.
        start, end: the points ``(x, y)`` the arrow joins.
        text: a label written just above the arrow's midpoint (none when empty).
        color: the arrow's and the label's colour.
        fontsize: the label's size in points.
    """
    _require_ax(ax)
    (x0, y0), (x1, y1) = _point(start, "start"), _point(end, "end")
    check_scalar(fontsize, "fontsize", gt=0)
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops=dict(arrowstyle="-|>", color=color, lw=1, shrinkA=0, shrinkB=0))
    if text:
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.06, str(text), ha="center", va="bottom", fontsize=fontsize,
                color=color)
    return ax.figure
