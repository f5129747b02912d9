"""Tests for mmedu.plot: what each figure contains, and refusal of bad input."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mmedu.plot import bar_table, embedding_2d, image_grid, learning_curves, spectrogram  # noqa: E402
from mmedu.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_image_grid_layout_and_pixels():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(7, 1, 28, 28, generator=g)
    fig = image_grid(images, labels=torch.arange(7), ncols=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.images) == 1
    assert _texts(ax) == [str(i) for i in range(7)]
    mosaic = ax.images[0].get_array()
    band = 28 // 3
    # tile 4 sits in row 1, column 1 of a 3-column grid (2-pixel gaps, caption band above each row)
    top, left = 1 * (28 + 2 + band) + band, 1 * (28 + 2)
    np.testing.assert_array_equal(np.asarray(mosaic[top : top + 28, left : left + 28]), images[4, 0].numpy())
    # unused cells (positions 7, 8) and gaps are masked, i.e. drawn as background
    assert mosaic.mask[top + 28 + 2 + band :, 1 * 30 :].all()
    assert mosaic.shape == (3 * (28 + 2 + band) - 2, 3 * 30 - 2)


def test_image_grid_variants():
    x = np.random.default_rng(0).random((4, 8, 8))
    fig = image_grid(x)  # (N, H, W), no captions: no band, no texts
    assert fig.axes[0].images[0].get_array().shape == (8, 4 * 10 - 2) and _texts(fig.axes[0]) == []
    fig = image_grid(x, labels=[0, 1, 2, 3], titles=["a", "b", "c", "d"], ncols=2)
    assert _texts(fig.axes[0]) == ["0: a", "1: b", "2: c", "3: d"]
    rgb = torch.rand(3, 3, 8, 8)
    fig = image_grid(rgb, titles=["p", "q", "r"])
    arr = fig.axes[0].images[0].get_array()
    assert arr.shape[-1] == 3
    _, ax = plt.subplots(1, 2)
    assert image_grid(x, ax=ax[1]) is ax[1].figure and len(ax[1].images) == 1 and len(ax[0].images) == 0


def test_image_grid_bad_input():
    with pytest.raises(ValueError, match=r"images: expected a 3-D or 4-D tensor .* got shape \(28, 28\)"):
        image_grid(torch.rand(28, 28))
    with pytest.raises(ValueError, match="expected 1 or 3 channels"):
        image_grid(torch.rand(2, 2, 8, 8))
    with pytest.raises(ValueError, match="labels: expected 2 entries"):
        image_grid(torch.rand(2, 8, 8), labels=[1, 2, 3])
    with pytest.raises(ValueError, match="images: expected finite values"):
        image_grid(torch.full((2, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="RGB values in"):
        image_grid(2 * torch.ones(1, 3, 4, 4))
    with pytest.raises(ValueError, match="ncols: expected an integer >= 1"):
        image_grid(torch.rand(2, 8, 8), ncols=0)
    with pytest.raises(TypeError, match="ax: expected a matplotlib Axes"):
        image_grid(torch.rand(2, 8, 8), ax="left")


def test_spectrogram_axes_in_seconds():
    s = torch.randn(40, 63)
    fig = spectrogram(s, title="digit 3")
    assert len(fig.axes) == 2  # the image and its colour bar
    ax = fig.axes[0]
    assert len(ax.images) == 1 and ax.get_title() == "digit 3"
    left, right, bottom, top = ax.images[0].get_extent()
    dt = 128 / 8000
    assert right - left == pytest.approx(63 * dt) and (left + dt / 2) == pytest.approx(0)
    assert (bottom, top) == (-0.5, 39.5)
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "mel bin"
    np.testing.assert_array_equal(ax.images[0].get_array(), s.numpy())
    with pytest.raises(ValueError, match=r"logmel: expected a 2-D tensor \(n_mels, T\)"):
        spectrogram(torch.randn(2, 40, 63))
    with pytest.raises(ValueError, match="hop_length: expected an integer >= 1"):
        spectrogram(s, hop_length=0)


def test_learning_curves_from_history_and_dicts():
    h = History([1.0, 0.5, 0.3], [0.4, 0.7, 0.8], [1.1, 0.6, 0.5], [0.3, 0.6, 0.7])
    fig = learning_curves(h)
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 2 and len(acc_ax.lines) == 2
    np.testing.assert_array_equal(loss_ax.lines[0].get_ydata(), h.train_loss)
    np.testing.assert_array_equal(acc_ax.lines[1].get_ydata(), h.val_acc)
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), [1, 2, 3])
    # no validation, no accuracy (regression): a single loss panel with one line
    fig = learning_curves({"train_loss": [3.0, 2.0], "train_acc": [math.nan, math.nan]})
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1
    # several runs: one colour per run
    fig = learning_curves({"concat": h, "tensor": h.as_dict()})
    loss_ax = fig.axes[0]
    assert len(loss_ax.lines) == 4
    assert [ln.get_label() for ln in loss_ax.lines] == ["concat train", "concat val", "tensor train", "tensor val"]
    assert loss_ax.lines[0].get_color() != loss_ax.lines[2].get_color()
    _, axs = plt.subplots(1, 2)
    assert learning_curves(h, ax=axs) is axs[0].figure and len(axs[1].lines) == 2
    _, one = plt.subplots()
    learning_curves(h, ax=one)
    assert len(one.lines) == 2


def test_learning_curves_bad_input():
    with pytest.raises(TypeError, match="expected a History or a dict with 'train_<name>' lists"):
        learning_curves([1.0, 2.0])
    with pytest.raises(ValueError, match=r"expected val_loss to be empty or have one value per epoch \(3\), got 2"):
        learning_curves({"train_loss": [1, 2, 3], "val_loss": [1, 2]})
    with pytest.raises(ValueError, match="expected at least one epoch"):
        learning_curves(History())
    with pytest.raises(TypeError, match="ax: expected None, an Axes or a sequence of Axes"):
        learning_curves(History([1.0]), ax=(1, 2, 3))
    _, axs = plt.subplots(1, 3)
    with pytest.raises(ValueError, match=r"ax: expected at most 2 Axes \(one per quantity \['loss', 'acc'\]\), got 3"):
        learning_curves(History([1.0], [0.5]), ax=axs)
    with pytest.raises(ValueError, match=r"keys: expected names among the recorded quantities \['loss'\], got \['acc'\]"):
        learning_curves(History([1.0]), keys=["acc"])


def test_learning_curves_one_panel_per_quantity():
    # a GAN's history: losses of opposite sign never share an axis; a validation metric has its own
    h = {"train_d_loss": [1.4, 1.3], "train_g_loss": [-0.7, -0.6], "val_R@10": [0.1, 0.2]}
    fig = learning_curves(h)
    assert [a.get_ylabel() for a in fig.axes] == ["d_loss", "g_loss", "R@10"]
    assert [len(a.lines) for a in fig.axes] == [1, 1, 1]
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), [-0.7, -0.6])
    assert fig.axes[2].lines[0].get_linestyle() == "--"
    fig = learning_curves(h, keys=["g_loss"])
    assert len(fig.axes) == 1 and fig.axes[0].get_ylabel() == "g_loss"
    fig = learning_curves({"train_a": [1, 2], "train_b": [1, 2], "train_c": [1, 2], "train_d": [3, 4]})
    assert len(fig.axes) == 4  # a 2 x 3 grid with two empty cells removed


def test_bar_table_simple_and_grouped():
    values = {"image": 0.91, "audio": 0.62, "concat": torch.tensor(0.95)}
    fig = bar_table(values)
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    np.testing.assert_allclose([p.get_height() for p in ax.patches], [0.91, 0.62, 0.95])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["image", "audio", "concat"]
    assert [t.get_text() for t in ax.texts] == ["0.910", "0.620", "0.950"]
    assert ax.get_ylim() == (0.0, 1.05) and ax.get_ylabel() == "accuracy"
    grouped = {"concat": {"both": 0.9, "no audio": 0.8}, "late": {"both": 0.85, "no audio": 0.7, "no image": 0.5}}
    fig = bar_table(grouped, ylabel="acc", fmt="{:.2f}")
    ax = fig.axes[0]
    assert len(ax.patches) == 6  # 2 groups x 3 series; the missing one is a NaN bar
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["both", "no audio", "no image"]
    assert "0.50" in [t.get_text() for t in ax.texts]
    assert bar_table({"a": 3.0, "b": 5.0}).axes[0].get_ylim()[1] > 5.0  # not clipped to [0, 1]


def test_bar_table_bad_input():
    with pytest.raises(TypeError, match=r"values: expected a non-empty dict"):
        bar_table({})
    with pytest.raises(TypeError, match=r"values\['a'\]: expected a number, got str"):
        bar_table({"a": "high"})
    with pytest.raises(TypeError, match="got a mix"):
        bar_table({"a": 1.0, "b": {"x": 1.0}})


def test_embedding_2d_one_scatter_per_class_and_shared_colours():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(30, 2))
    labels = torch.arange(30) % 3
    fig = embedding_2d(pts, labels, name="image")
    ax = fig.axes[0]
    assert len(ax.collections) == 3
    for k, coll in enumerate(ax.collections):
        np.testing.assert_array_equal(coll.get_offsets(), pts[labels.numpy() == k])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["image 0", "image 1", "image 2"]
    # a second modality on the same axes keeps the colour of each class
    embedding_2d(pts + 1, labels, ax=ax, marker="x", name="audio")
    assert len(ax.collections) == 6
    np.testing.assert_array_equal(ax.collections[1].get_facecolor(), ax.collections[4].get_facecolor())
    with pytest.raises(ValueError, match=r"points: expected shape \(N, 2\), got \(30, 3\)"):
        embedding_2d(rng.normal(size=(30, 3)), labels)
    with pytest.raises(ValueError, match="labels: expected 30 entries"):
        embedding_2d(pts, labels[:5])


def test_schematic_box_and_arrow():
    from matplotlib.patches import FancyBboxPatch

    from mmedu.plot import arrow, box
    fig, ax = plt.subplots()
    assert box(ax, (2.0, 1.0), "encoder", "#cfe2f3", width=1.0, height=0.5) is fig
    (patch,) = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    bb = patch.get_bbox()
    assert (bb.x0, bb.y0, bb.width, bb.height) == pytest.approx((1.5, 0.75, 1.0, 0.5))
    assert patch.get_facecolor()[:3] == pytest.approx((0xcf / 255, 0xe2 / 255, 0xf3 / 255))
    assert [t.get_text() for t in ax.texts] == ["encoder"] and ax.texts[0].get_position() == (2.0, 1.0)
    assert arrow(ax, (0, 0), (1, 2), "W") is fig
    (ann,) = [c for c in ax.get_children() if type(c).__name__ == "Annotation"]
    assert ann.xy == (1.0, 2.0) and ann.xyann == (0.0, 0.0)
    assert ax.texts[-1].get_text() == "W" and ax.texts[-1].get_position() == pytest.approx((0.5, 1.06))
    arrow(ax, (0, 0), (1, 0))
    assert len(ax.texts) == 4  # box label, two annotations (arrows), one arrow label: no empty label
    with pytest.raises(TypeError, match="ax: expected a matplotlib Axes, got NoneType"):
        box(None, (0, 0), "x")
    with pytest.raises(TypeError, match=r"xy: expected a point \(x, y\) of two finite numbers, got \(0, 1, 2\)"):
        box(ax, (0, 1, 2), "x")
    with pytest.raises(TypeError, match="end: expected a point"):
        arrow(ax, (0, 0), (float("nan"), 1))
    with pytest.raises(ValueError, match="width"):
        box(ax, (0, 0), "x", width=0)
