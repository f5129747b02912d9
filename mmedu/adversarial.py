r"""Adversarial cross-modal learning: GAN losses, the source text's cross-modal GAN, gradient
reversal and an ACMR-style adversarial common space.

**GAN losses from logits.**  A discriminator outputs a *logit* :math:`a`; its probability
"real" is :math:`D = \sigma(a)`.  Every loss here is written with
:math:`\log\sigma(a)` and :math:`\log(1 - \sigma(a)) = \log\sigma(-a)`
(``torch.nn.functional.logsigmoid``), which is finite for every finite logit; computing
``sigmoid`` first and then ``log`` (as the source text's code would) overflows to
``-inf`` once :math:`|a| \gtrsim 17` in float32.

* :func:`discriminator_loss` :math:`= -\mathbb{E}[\log\sigma(a_{real})] - \mathbb{E}[\log\sigma(-a_{fake})]`
  (binary cross-entropy, real = 1, generated = 0);
* :func:`generator_loss_minimax` :math:`= \mathbb{E}[\log(1 - \sigma(a_{fake}))]` — the
  generator's side of :math:`\min_G\max_D`; its gradient vanishes when :math:`D` confidently
  rejects the fakes;
* :func:`generator_loss_nonsaturating` :math:`= -\mathbb{E}[\log\sigma(a_{fake})]` — same fixed
  point, strong gradient exactly when the generator is losing (Goodfellow et al. 2014).

:func:`optimal_discriminator` is the closed form :math:`D^*(x) = p_{data}(x) / (p_{data}(x) + p_g(x))`.

**The source text's cross-modal GAN (§3.2, §4.4).**  :class:`CrossModalGAN`: a generator
:math:`G` maps image features to text features; a discriminator scores the *joint* vector,
:math:`[x_{img}; x_{txt}]` as real and :math:`[x_{img}; G(x_{img})]` as generated.  The pure
adversarial objective only asks that the generated pairs be distributed like real pairs; an
optional *paired loss* (``"l2"``: :math:`\lVert G(x_{img}) - x_{txt}\rVert^2`, or
``"contrastive"``: InfoNCE between :math:`G(x_{img})` and the batch's true :math:`x_{txt}`)
ties each output to its own caption.

**Gradient reversal** (Ganin & Lempitsky 2015): :func:`gradient_reversal` /
:class:`GradientReversal` are the identity in the forward pass and multiply the incoming
gradient by :math:`-\lambda` in the backward pass, so one optimiser trains a classifier to
*minimise* a loss while the features below it are trained to *maximise* it.

**ACMR-style common space** (Wang et al. 2017): :class:`ACMR` projects each modality into a
shared :math:`d_{common}`-dimensional space; a label classifier and a triplet loss make the
space semantic; a modality classifier, placed behind gradient reversal, tries to tell which
modality a code came from, and the projectors learn to make that impossible.
:func:`fit_acmr` trains it on any paired feature matrices with integer labels.

Shapes: batch first everywhere, ``x_img: (B, image_dim)``, ``x_text: (B, text_dim)``, logits ``(B,)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (as_tensor, check_choice, check_finite, check_ndim, check_positive_int, check_same_batch,
                      check_scalar)
from .losses import _triplet_mean, info_nce
from .training import Batches, History, fit

__all__ = [
    "discriminator_loss",
    "generator_loss_minimax",
    "generator_loss_nonsaturating",
    "optimal_discriminator",
    "Generator",
    "Discriminator",
    "CrossModalGAN",
    "fit_gan",
    "gradient_reversal",
    "GradientReversal",
    "ACMR",
    "fit_acmr",
]


# --------------------------------------------------------------------------- validation helpers


def _real(v, name: str, *, minimum: float | None = None, strict: bool = False) -> float:
    # A real number (NumPy scalars and one-element tensors included) >= minimum (> if strict).
    if minimum is None:
        return check_scalar(v, name, tensor=True)
    if strict:
        return check_scalar(v, name, gt=minimum, tensor=True)
    return check_scalar(v, name, ge=minimum, tensor=True)


def _logits(x, name: str) -> torch.Tensor:
    t = as_tensor(x, name, floating=True)
    check_ndim(t, name, (1, 2), "(B,) or (B, 1)")
    if t.ndim == 2:
        if t.shape[1] != 1:
            raise ValueError(f"{name}: expected shape (B,) or (B, 1), got {tuple(t.shape)}")
        t = t[:, 0]
    if t.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one logit, got an empty tensor")
    check_finite(t, name)
    return t


def _features(x, name: str, dim: int, like: torch.Tensor | None = None) -> torch.Tensor:
    t = as_tensor(x, name, floating=True)
    check_ndim(t, name, 2, f"(B, {dim})")
    if t.shape[1] != dim:
        raise ValueError(f"{name}: expected {dim} features per row (B, {dim}), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one row, got shape {tuple(t.shape)}")
    check_finite(t, name)
    if like is not None:
        t = t.to(device=like.device, dtype=like.dtype)
    return t


def _hidden(hidden, name: str) -> tuple[int, ...]:
    if isinstance(hidden, (int, bool)) or not isinstance(hidden, Sequence):
        raise TypeError(f"{name}: expected a sequence of hidden widths such as (64,) or (), got {hidden!r}")
    return tuple(check_positive_int(h, f"{name}[{i}]") for i, h in enumerate(hidden))


def _mlp(input_dim: int, hidden: tuple[int, ...], output_dim: int, negative_slope: float = 0.2) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = input_dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.LeakyReLU(negative_slope)]
        d = h
    layers.append(nn.Linear(d, output_dim))
    return nn.Sequential(*layers)


def _first_param(module: nn.Module) -> torch.Tensor:
    return next(module.parameters())


# --------------------------------------------------------------------------- GAN losses


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""Discriminator loss (binary cross-entropy, real = 1, generated = 0), from logits.

    ``-mean(log sigmoid(real_logits)) - mean(log(1 - sigmoid(fake_logits)))``, computed with
    ``logsigmoid`` (finite for any finite logit).  Minimising it is the discriminator's
    :math:`\max_D` of the GAN value function.

    Args:
        real_logits: (B_r,) or (B_r, 1) logits the discriminator gave real samples.
        fake_logits: (B_f,) or (B_f, 1) logits it gave generated samples.

    Returns:
        A scalar tensor, >= 0 (0 only in the limit of a perfect, infinitely confident D).
    """
    r = _logits(real_logits, "real_logits")
    f = _logits(fake_logits, "fake_logits")
    return -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean()


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""The generator's side of the minimax game: ``mean(log(1 - sigmoid(fake_logits)))``.

    The generator *minimises* it (so it is <= 0).  Its gradient with respect to a logit
    :math:`a` is :math:`-\sigma(a)/B`: nearly 0 when the discriminator confidently rejects the
    sample (:math:`a \ll 0`) — the saturation that stalls early GAN training.

    Args:
        fake_logits: (B,) or (B, 1) discriminator logits of generated samples.
    """
    f = _logits(fake_logits, "fake_logits")
    return F.logsigmoid(-f).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""Non-saturating generator loss ``-mean(log sigmoid(fake_logits))`` (>= 0).

    Same fixed point as :func:`generator_loss_minimax`, but its gradient with respect to a
    logit, :math:`-(1 - \sigma(a))/B`, is largest exactly when the discriminator rejects the
    sample.

    Args:
        fake_logits: (B,) or (B, 1) discriminator logits of generated samples.
    """
    f = _logits(fake_logits, "fake_logits")
    return -F.logsigmoid(f).mean()


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    r"""The optimal discriminator for a fixed generator, :math:`D^* = p_{data} / (p_{data} + p_g)`.

    Args:
        p_data: densities (any shape) of the data distribution at some points, >= 0.
        p_g: densities of the generator's distribution at the same points, >= 0, same shape.

    Returns:
        :math:`D^*` at those points, same shape.  Where both densities are 0 the value is
        undefined and a ``ValueError`` is raised.
    """
    a = as_tensor(p_data, "p_data", floating=True)
    b = as_tensor(p_g, "p_g", floating=True)
    if a.shape != b.shape:
        raise ValueError(f"p_data and p_g: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    check_finite(a, "p_data")
    check_finite(b, "p_g")
    if bool((a < 0).any()) or bool((b < 0).any()):
        raise ValueError("p_data and p_g: expected densities >= 0, got negative values")
    total = a + b
    if bool((total == 0).any()):
        raise ValueError("p_data and p_g: both densities are 0 at some point, where D* is undefined")
    return a / total


# --------------------------------------------------------------------------- G and D


class Generator(nn.Module):
    """Generator MLP ``(B, input_dim) -> (B, output_dim)``, LeakyReLU between layers.

    Args:
        input_dim: input size (image features, or a noise dimension for an unconditional GAN).
        output_dim: output size (text features, or the data dimension).
        hidden_dims: hidden widths; ``()`` gives one linear map, as in the source text's §4.6 code.
    """

    def __init__(self, input_dim: int, output_dim: int, hidden_dims: Sequence[int] = (128,)) -> None:
        super().__init__()
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.output_dim = check_positive_int(output_dim, "output_dim")
        self.hidden_dims = _hidden(hidden_dims, "hidden_dims")
        self.net = _mlp(self.input_dim, self.hidden_dims, self.output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, input_dim) -> (B, output_dim)."""
        return self.net(_features(x, "x", self.input_dim, _first_param(self)))


class Discriminator(nn.Module):
    """Discriminator MLP ``(B, input_dim) -> (B,)`` **logits** (no sigmoid: losses take logits).

    Args:
        input_dim: input size (for the cross-modal GAN, ``image_dim + text_dim``: the joint vector).
        hidden_dims: hidden widths; ``()`` gives the source text's single linear layer.
    """

    def __init__(self, input_dim: int, hidden_dims: Sequence[int] = (128,)) -> None:
        super().__init__()
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.hidden_dims = _hidden(hidden_dims, "hidden_dims")
        self.net = _mlp(self.input_dim, self.hidden_dims, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, input_dim) -> logits (B,); sigmoid(logit) is the probability "real"."""
        return self.net(_features(x, "x", self.input_dim, _first_param(self)))[:, 0]


# --------------------------------------------------------------------------- cross-modal GAN


def _step_only(module: nn.Module, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    """One optimiser step on ``module``'s parameters only: gradients are taken with
    ``torch.autograd.grad`` so no other module's ``.grad`` is touched (the G step leaves D's
    gradients as they were, and vice versa)."""
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    optimizer.zero_grad(set_to_none=True)
    for p, g in zip(params, grads):
        p.grad = g
    optimizer.step()


class CrossModalGAN(nn.Module):
    r"""The source text's cross-modal GAN (§3.2, §4.4), with an optional paired loss.

    ``G: (B, image_dim) -> (B, text_dim)``; ``D`` scores the joint vector, real
    :math:`[x_{img}; x_{txt}]` against generated :math:`[x_{img}; G(x_{img})]`.
    Generator objective per batch:
    ``adversarial_weight * adversarial + paired_weight * paired`` where ``adversarial`` is the
    non-saturating (default) or minimax generator loss and ``paired`` is

    * ``None``: absent (the source's pure adversarial objective);
    * ``"l2"``: ``mean_i ||G(x_img_i) - x_text_i||^2``;
    * ``"contrastive"``: symmetric InfoNCE between ``G(x_img)`` and ``x_text`` over the batch
      (cosine similarity / ``temperature``; every other caption of the batch is a negative).

    Args:
        image_dim, text_dim: feature sizes.
        hidden_dims_g, hidden_dims_d: hidden widths of G and D (``()`` = linear, as in the source's code).
        paired: ``None``, ``"l2"`` or ``"contrastive"``.
        paired_weight: weight of the paired loss (> 0 when ``paired`` is set).
        adversarial_weight: weight of the adversarial loss (>= 0; 0 trains G by the paired loss only).
        g_loss: ``"nonsaturating"`` or ``"minimax"``.
        temperature: InfoNCE temperature (> 0).
    """

    def __init__(
        self,
        image_dim: int,
        text_dim: int,
        hidden_dims_g: Sequence[int] = (128,),
        hidden_dims_d: Sequence[int] = (128,),
        paired: str | None = None,
        paired_weight: float = 1.0,
        adversarial_weight: float = 1.0,
        g_loss: str = "nonsaturating",
        temperature: float = 0.1,
    ) -> None:
        super().__init__()
        self.image_dim = check_positive_int(image_dim, "image_dim")
        self.text_dim = check_positive_int(text_dim, "text_dim")
        check_choice(paired, "paired", [None, "l2", "contrastive"])
        check_choice(g_loss, "g_loss", ["nonsaturating", "minimax"])
        self.paired = paired
        self.g_loss = g_loss
        self.paired_weight = _real(paired_weight, "paired_weight", minimum=0.0)
        self.adversarial_weight = _real(adversarial_weight, "adversarial_weight", minimum=0.0)
        self.temperature = _real(temperature, "temperature", minimum=0.0, strict=True)
        self.generator = Generator(self.image_dim, self.text_dim, hidden_dims_g)
        self.discriminator = Discriminator(self.image_dim + self.text_dim, hidden_dims_d)

    def _inputs(self, x_img, x_text=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        like = _first_param(self)
        xi = _features(x_img, "x_img", self.image_dim, like)
        if x_text is None:
            return xi, None
        xt = _features(x_text, "x_text", self.text_dim, like)
        check_same_batch([xi, xt], ["x_img", "x_text"])
        return xi, xt

    def forward(self, x_img: torch.Tensor) -> torch.Tensor:
        """x_img: (B, image_dim) -> generated text features G(x_img): (B, text_dim)."""
        return self.generator(self._inputs(x_img)[0])

    def discriminate(self, x_img: torch.Tensor, x_text: torch.Tensor) -> torch.Tensor:
        """Logits (B,) of D on the joint vectors [x_img; x_text] (real or generated text)."""
        xi, xt = self._inputs(x_img, x_text)
        return self.discriminator(torch.cat([xi, xt], dim=1))

    def paired_loss(self, x_img: torch.Tensor, x_text: torch.Tensor) -> torch.Tensor:
        """The paired loss of G(x_img) against the true x_text (L2 unless ``paired='contrastive'``)."""
        xi, xt = self._inputs(x_img, x_text)
        fake = self.generator(xi)
        if self.paired == "contrastive":
            return info_nce(fake, xt, self.temperature)
        return (fake - xt).pow(2).sum(dim=1).mean()

    def d_step(self, x_img: torch.Tensor, x_text: torch.Tensor, optimizer_d: torch.optim.Optimizer) -> dict[str, float]:
        """One discriminator update (G is not touched: its output is computed without grad).

        Returns ``{"d_loss", "d_acc"}``: the loss before the step and the fraction of the batch's
        real and generated pairs D classifies correctly (logit > 0 means "real").
        """
        xi, xt = self._inputs(x_img, x_text)
        with torch.no_grad():
            fake = self.generator(xi)
        real_logits = self.discriminator(torch.cat([xi, xt], dim=1))
        fake_logits = self.discriminator(torch.cat([xi, fake], dim=1))
        loss = discriminator_loss(real_logits, fake_logits)
        _step_only(self.discriminator, loss, optimizer_d)
        acc = 0.5 * ((real_logits > 0).float().mean() + (fake_logits <= 0).float().mean())
        return {"d_loss": float(loss.detach()), "d_acc": float(acc)}

    def g_step(self, x_img: torch.Tensor, x_text: torch.Tensor, optimizer_g: torch.optim.Optimizer) -> dict[str, float]:
        """One generator update; only G's parameters receive gradients (D's ``.grad`` untouched).

        Returns ``{"g_loss", "paired_loss"}`` before the step (``g_loss`` is the adversarial part;
        ``paired_loss`` is the configured paired loss — L2 when ``paired`` is None, for monitoring).
        """
        xi, xt = self._inputs(x_img, x_text)
        fake = self.generator(xi)
        fake_logits = self.discriminator(torch.cat([xi, fake], dim=1))
        adv = (generator_loss_nonsaturating(fake_logits) if self.g_loss == "nonsaturating"
               else generator_loss_minimax(fake_logits))
        if self.paired == "contrastive":
            pl = info_nce(fake, xt, self.temperature)
        else:
            pl = (fake - xt).pow(2).sum(dim=1).mean()
        total = self.adversarial_weight * adv
        if self.paired is not None:
            total = total + self.paired_weight * pl
        _step_only(self.generator, total, optimizer_g)
        return {"g_loss": float(adv.detach()), "paired_loss": float(pl.detach())}

    def training_step(self, batch: Sequence[torch.Tensor], optimizers: dict[str, torch.optim.Optimizer],
                      d_steps: int = 1) -> dict[str, float]:
        """``d_steps`` discriminator updates, then one generator update, on one batch.

        The step of :func:`mmedu.training.fit` with two optimizers (see :func:`fit_gan`).

        Args:
            batch: ``(x_img, x_text)``, shapes ``(B, image_dim)`` and ``(B, text_dim)``.
            optimizers: ``{"generator": …, "discriminator": …}``.
            d_steps: discriminator updates per generator update.

        Returns ``{"d_loss", "d_acc", "g_loss", "paired_loss"}`` (D's numbers from its last
        step; ``nan`` when ``adversarial_weight`` is 0 and D is not trained).
        """
        d_steps = check_positive_int(d_steps, "d_steps")
        if not isinstance(optimizers, dict) or set(optimizers) != {"generator", "discriminator"}:
            got = sorted(optimizers) if isinstance(optimizers, dict) else type(optimizers).__name__
            raise ValueError(f"optimizers: expected a dict with keys ['discriminator', 'generator'], got {got}")
        x_img, x_text = batch
        out: dict[str, float] = {}
        if self.adversarial_weight > 0:
            for _ in range(d_steps):
                out = self.d_step(x_img, x_text, optimizers["discriminator"])
        else:
            out = {"d_loss": float("nan"), "d_acc": float("nan")}
        out.update(self.g_step(x_img, x_text, optimizers["generator"]))
        return out


def _check_seed(seed) -> int:
    return check_positive_int(seed, "seed", minimum=0, maximum=2**63 - 1)


def fit_gan(
    model: CrossModalGAN,
    x_img: torch.Tensor,
    x_text: torch.Tensor,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    lr_g: float = 1e-3,
    lr_d: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    d_steps: int = 1,
    seed: int = 0,
    val_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    select: str | None = None,
    progress: bool = False,
) -> History:
    """Train a :class:`CrossModalGAN` with Adam on paired features: a shortcut for
    :func:`mmedu.training.fit` with the model's two-optimizer :meth:`~CrossModalGAN.training_step`.

    It is exactly::

        opts = {"generator": Adam(G, lr_g, betas), "discriminator": Adam(D, lr_d, betas)}
        fit(model, Batches(x_img, x_text, batch_size=batch_size, seed=seed, drop_last=True),
            opts, epochs=epochs, step=lambda m, b, o: m.training_step(b, o, d_steps),
            val_fn=val_fn, select=select)

    Args:
        model: the GAN (its parameters' device is used; the data are moved there).
        x_img: (N, image_dim) image features; x_text: (N, text_dim) the paired text features.
        epochs, batch_size: passes over the data and minibatch size (the last partial batch is
            dropped so every batch has the same size).
        lr_g, lr_d: Adam learning rates of G and D; betas: Adam's betas (0.5 is usual for GANs).
        d_steps: discriminator updates per generator update.
        seed: seeds the shuffling (a local ``torch.Generator``; no global RNG is touched).
        val_fn, select: validation after every epoch and best-epoch selection, as in
            :func:`~mmedu.training.fit` (e.g. ``val_fn=lambda m: {"R@10": ...}``,
            ``select="val_R@10"``).
        progress: show a progress bar over the epochs.

    Returns:
        A :class:`~mmedu.training.History` with ``train_d_loss``, ``train_d_acc``,
        ``train_g_loss``, ``train_paired_loss`` (one mean per epoch each) and a ``val_<name>``
        record per key of ``val_fn``.  The model is left in ``eval()`` mode.
    """
    if not isinstance(model, CrossModalGAN):
        raise TypeError(f"model: expected a CrossModalGAN, got {type(model).__name__}")
    xi, xt = model._inputs(x_img, x_text)
    n = xi.shape[0]
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size", maximum=n)
    lr_g = _real(lr_g, "lr_g", minimum=0.0, strict=True)
    lr_d = _real(lr_d, "lr_d", minimum=0.0, strict=True)
    d_steps = check_positive_int(d_steps, "d_steps")
    batches = Batches(xi, xt, batch_size=batch_size, seed=_check_seed(seed), drop_last=True)
    optimizers = {"generator": torch.optim.Adam(model.generator.parameters(), lr=lr_g, betas=betas),
                  "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=lr_d, betas=betas)}
    return fit(model, batches, optimizers, epochs=epochs, step=lambda m, b, o: m.training_step(b, o, d_steps),
               val_fn=val_fn, select=select, progress=progress, desc="GAN")


# --------------------------------------------------------------------------- gradient reversal


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lambda_ * grad, None


def gradient_reversal(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    r"""Identity in the forward pass; multiplies the gradient by :math:`-\lambda` in the backward pass.

    Args:
        x: a floating tensor of any shape.
        lambda_: the reversal strength, >= 0 (0 blocks the gradient entirely).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
    lam = _real(lambda_, "lambda_", minimum=0.0)
    return _ReverseGrad.apply(x, lam)


class GradientReversal(nn.Module):
    r"""Module form of :func:`gradient_reversal` (no parameters); ``lambda_`` may be changed
    between steps (e.g. ramped up during training)."""

    def __init__(self, lambda_: float = 1.0) -> None:
        super().__init__()
        self.lambda_ = _real(lambda_, "lambda_", minimum=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gradient_reversal(x, self.lambda_)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_:g}"


# --------------------------------------------------------------------------- ACMR-style model


class ACMR(nn.Module):
    r"""Adversarial cross-modal retrieval in the style of ACMR (Wang et al. 2017).

    Two projectors map image and text features into a common space of size ``embed_dim``:
    ``f_img: (B, image_dim) -> (B, embed_dim)``, ``f_txt: (B, text_dim) -> (B, embed_dim)``.  Trained by
    :func:`fit_acmr` on

    * a **label loss**: one linear classifier on the common codes of both modalities
      (cross-entropy), so the space separates the classes;
    * a **triplet loss** (:func:`mmedu.losses.vse_hinge`, averaged over the triplets; see :mod:`mmedu.losses`) between image and text codes, so paired items
      are closer than unpaired ones;
    * an **adversarial modality loss**: a classifier tries to tell image codes from text codes;
      it sits behind :class:`GradientReversal`, so the same backward pass trains it to succeed
      and the projectors to make it fail (the codes of the two modalities are pushed together; chapter 4
      measures that on MMDigits they do not become indistinguishable).

    Args:
        image_dim, text_dim: input feature sizes.
        embed_dim: size of the common space.
        n_classes: number of labels (labels are integers in ``0..n_classes-1``).
        hidden_dims: hidden widths of each projector (``()`` = linear projectors).
        hidden_dims_modality: hidden widths of the modality classifier.
        lambda_: gradient-reversal strength (weight of the adversarial loss for the projectors).
            Small by default: the reversed loss is unbounded for the projectors, so a large
            ``lambda_`` lets them chase it at the expense of the label and triplet losses
            (chapter 4 uses the default without tuning it).
    """

    def __init__(
        self,
        image_dim: int,
        text_dim: int,
        embed_dim: int,
        n_classes: int,
        hidden_dims: Sequence[int] = (128,),
        hidden_dims_modality: Sequence[int] = (64,),
        lambda_: float = 0.1,
    ) -> None:
        super().__init__()
        self.image_dim = check_positive_int(image_dim, "image_dim")
        self.text_dim = check_positive_int(text_dim, "text_dim")
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.n_classes = check_positive_int(n_classes, "n_classes", minimum=2)
        hidden_dims = _hidden(hidden_dims, "hidden_dims")
        self.image_projector = _mlp(self.image_dim, hidden_dims, self.embed_dim)
        self.text_projector = _mlp(self.text_dim, hidden_dims, self.embed_dim)
        self.label_classifier = nn.Linear(self.embed_dim, self.n_classes)
        self.reversal = GradientReversal(lambda_)
        self.modality_classifier = _mlp(self.embed_dim, _hidden(hidden_dims_modality, "hidden_dims_modality"), 1)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, image_dim) image features -> (B, embed_dim) common-space codes."""
        return self.image_projector(_features(x, "x_img", self.image_dim, _first_param(self)))

    def encode_text(self, t: torch.Tensor) -> torch.Tensor:
        """t: (B, text_dim) text features -> (B, embed_dim) common-space codes."""
        return self.text_projector(_features(t, "x_text", self.text_dim, _first_param(self)))

    def forward(self, x_img: torch.Tensor, x_text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, image_dim), (B, text_dim) -> their codes ((B, embed_dim), (B, embed_dim))."""
        return self.encode_image(x_img), self.encode_text(x_text)

    def losses(
        self,
        x_img: torch.Tensor,
        x_text: torch.Tensor,
        labels: torch.Tensor,
        triplet: str = "pair",
        margin: float = 0.2,
    ) -> dict[str, torch.Tensor]:
        """The three losses on one batch (differentiable) and the modality classifier's accuracy.

        ``triplet="pair"``: the positive of an image is its own text; ``"label"``: any text of the
        same label.  Returns ``{"label", "triplet", "modality", "modality_acc"}``; the modality
        loss reaches the projectors reversed (times ``-lambda_``).
        """
        check_choice(triplet, "triplet", ["pair", "label"])
        zi, zt = self.encode_image(x_img), self.encode_text(x_text)
        check_same_batch([zi, zt], ["x_img", "x_text"])
        y = _labels(labels, zi.shape[0], self.n_classes, zi.device)
        label = 0.5 * (F.cross_entropy(self.label_classifier(zi), y) + F.cross_entropy(self.label_classifier(zt), y))
        trip = _triplet_mean(zi, zt, margin, labels=y if triplet == "label" else None)
        # the classifier sees unit-length codes (retrieval compares directions): the projectors can
        # then only fool it by mixing the modalities, not by inflating the codes' norms
        codes = F.normalize(torch.cat([zi, zt], dim=0), dim=1)
        logits = self.modality_classifier(self.reversal(codes))[:, 0]
        target = torch.cat([torch.ones(zi.shape[0]), torch.zeros(zt.shape[0])]).to(logits)
        modality = F.binary_cross_entropy_with_logits(logits, target)
        acc = ((logits > 0).to(target.dtype) == target).to(target.dtype).mean()
        return {"label": label, "triplet": trip, "modality": modality, "modality_acc": acc.detach()}

    def training_step(
        self,
        batch: Sequence[torch.Tensor],
        *,
        label_weight: float = 1.0,
        triplet_weight: float = 1.0,
        adversarial_weight: float = 1.0,
        triplet: str = "pair",
        margin: float = 0.2,
    ) -> dict[str, torch.Tensor]:
        """The step of :func:`mmedu.training.fit`: the weighted objective on one batch.

        ``batch`` is ``(x_img, x_text, labels)``.  Returns ``{"loss": label_weight * label +
        triplet_weight * triplet + adversarial_weight * modality, **self.losses(...)}``; one
        optimizer over all parameters minimises ``"loss"`` (the gradient reversal inside makes
        the projectors maximise the modality part).
        """
        x_img, x_text, labels = batch
        parts = self.losses(x_img, x_text, labels, triplet=triplet, margin=margin)
        weights = {"label": label_weight, "triplet": triplet_weight, "modality": adversarial_weight}
        return {"loss": sum(weights[k] * parts[k] for k in weights), **parts}


def _labels(labels, n: int, n_classes: int, device: torch.device) -> torch.Tensor:
    y = as_tensor(labels, "labels")
    check_ndim(y, "labels", 1, f"({n},)")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"labels: expected integer class labels, got dtype {y.dtype}")
    if y.shape[0] != n:
        raise ValueError(f"labels: expected {n} labels (one per row of the features), got {y.shape[0]}")
    if n and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels: expected integers in [0, {n_classes - 1}] (n_classes={n_classes}), "
                         f"got values in [{int(y.min())}, {int(y.max())}]")
    return y.to(device=device, dtype=torch.int64)


def fit_acmr(
    model: ACMR,
    x_img: torch.Tensor,
    x_text: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 1e-3,
    label_weight: float = 1.0,
    triplet_weight: float = 1.0,
    adversarial_weight: float = 1.0,
    triplet: str = "pair",
    margin: float = 0.2,
    seed: int = 0,
    val_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    select: str | None = None,
    progress: bool = False,
) -> History:
    r"""Train an :class:`ACMR` model on paired features with labels (any data, not only MMDigits).

    Minimises ``label_weight * label + triplet_weight * triplet + adversarial_weight * modality``
    with one Adam optimiser over all parameters; the gradient reversal inside the model makes the
    projectors *maximise* the modality loss while the modality classifier minimises it.  A
    shortcut for :func:`mmedu.training.fit` with :meth:`ACMR.training_step` on
    ``Batches(x_img, x_text, labels, batch_size=batch_size, seed=seed, drop_last=True)``.

    Example::

        model = ACMR(image_dim, text_dim, embed_dim=32, n_classes=10)
        history = fit_acmr(model, x_img, x_text, labels, epochs=20, seed=0)
        zi, zt = model.encode_image(x_img_test), model.encode_text(x_text_test)

    Args:
        model: the :class:`ACMR` model (trained in place, on its parameters' device).
        x_img: (N, image_dim) image features; x_text: (N, text_dim) the paired text features (row i of
            both is pair i); labels: (N,) integer labels in ``0..n_classes-1``.
        epochs, batch_size, lr: training schedule (the last partial batch is dropped).
        label_weight, triplet_weight, adversarial_weight: loss weights (>= 0).
        triplet: ``"pair"`` (instance-level positives) or ``"label"`` (class-level positives).
        margin: triplet margin.
        seed: seeds the shuffling (a local generator; initialise the model under
            ``mmedu.training.set_seed`` for reproducible weights).
        val_fn, select: validation after every epoch and best-epoch selection, as in
            :func:`~mmedu.training.fit`.
        progress: show a progress bar over the epochs.

    Returns:
        A :class:`~mmedu.training.History` with ``train_loss`` (the weighted total),
        ``train_label``, ``train_triplet``, ``train_modality``, ``train_modality_acc`` (one mean
        per epoch each) and a ``val_<name>`` record per key of ``val_fn``.  The model is left
        in ``eval()`` mode.
    """
    if not isinstance(model, ACMR):
        raise TypeError(f"model: expected an ACMR model, got {type(model).__name__}")
    like = _first_param(model)
    xi = _features(x_img, "x_img", model.image_dim, like)
    xt = _features(x_text, "x_text", model.text_dim, like)
    n = check_same_batch([xi, xt], ["x_img", "x_text"])
    y = _labels(labels, n, model.n_classes, like.device)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size", minimum=2, maximum=n)
    lr = _real(lr, "lr", minimum=0.0, strict=True)
    options = {"label_weight": _real(label_weight, "label_weight", minimum=0.0),
               "triplet_weight": _real(triplet_weight, "triplet_weight", minimum=0.0),
               "adversarial_weight": _real(adversarial_weight, "adversarial_weight", minimum=0.0),
               "triplet": triplet, "margin": _real(margin, "margin", minimum=0.0)}
    check_choice(triplet, "triplet", ["pair", "label"])
    batches = Batches(xi, xt, y, batch_size=batch_size, seed=_check_seed(seed), drop_last=True)
    return fit(model, batches, torch.optim.Adam(model.parameters(), lr=lr), epochs=epochs,
               step=lambda m, b: m.training_step(b, **options), val_fn=val_fn, select=select,
               progress=progress, desc="ACMR")
