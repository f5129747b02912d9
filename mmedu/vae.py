"""Variational autoencoders and two multimodal VAEs (product and mixture of experts).

Building blocks (all per sample: batch first, one value per row)::

    reparameterize(mu, logvar)      z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)
    kl_normal(mu, logvar)           KL(N(mu, diag exp(logvar)) || N(0, I)), closed form   -> (B,)
    bernoulli_nll(logits, x)        -log p(x | logits), x in [0, 1]                        -> (B,)
    gaussian_nll(mean, x, logvar)   -log N(x; mean, diag exp(logvar))                      -> (B,)
    categorical_nll(logits, counts) -sum_w counts_w log softmax(logits)_w (bag of words)   -> (B,)
    elbo(nll, mu, logvar, beta)     -nll - beta * KL                                       -> (B,)
    product_of_experts(mus, logvars, mask)     Gaussian product with the N(0, I) prior expert
    mixture_of_experts(mus, logvars, mask)     a sample of the uniform mixture of the experts

Models:

* :class:`VAE` — one modality, MLP encoder and decoder {Kingma & Welling 2014}.
* :class:`MVAE` — one encoder per modality, joint posterior = product of the experts and the
  prior; trained on the ELBO of the joint *and* of every single modality (Wu & Goodman 2018).
* :class:`MMVAE` — joint posterior = uniform mixture of the unimodal experts; trained on the
  stratified ELBO with one sample per expert (Shi et al. 2019, K = 1; see :meth:`MMVAE.loss`).

The three models share one interface. ``x`` is a batch ``(B, D)`` for :class:`VAE` and a dict
``{modality: (B, D_m)}`` for the multimodal two (a missing modality is absent or ``None``;
their methods also take a per-item ``mask`` ``(B, M)``, 1 = present)::

    encode(x)                    -> (mu, logvar), the parameters of the posterior q(z | x):
                                    VAE, MVAE: one Gaussian, each (B, d) (a product of Gaussians
                                    is Gaussian); MMVAE: the M Gaussian experts of the mixture,
                                    each (M, B, d) in the order model.modalities
    sample_posterior(x, generator)     -> z (B, d), one reparameterised draw of q(z | x)
    model(x, generator) = forward(...) -> {"mu", "logvar", "z", "output"}: encode, draw z,
                                    decode (MMVAE adds "expert", the component each z came from)
    elbo(x, generator, beta)     -> (B,)  the single-sample ELBO per item
    loss(x, generator, beta)     -> ()    minus its batch mean: what training minimises
    training_step(batch, generator, beta) -> {"loss": ()}, for :func:`mmedu.training.fit`

``encode`` is deterministic (no generator): every random draw — of ``z``, and of the
mixture's expert — happens in ``sample_posterior``, ``forward``, ``elbo`` and ``loss``, from
the ``generator`` they are given.

Numerical care: every log-variance is clamped to :data:`LOGVAR_RANGE` before it is
exponentiated, likelihoods are computed from logits (``binary_cross_entropy_with_logits``,
``log_softmax``), so extreme inputs give large but finite values, never NaN.

Likelihoods of the multimodal models, by name: ``"bernoulli"`` (pixels in [0, 1]; decoder
output = logits), ``"categorical"`` (word counts of a bag of words; decoder output = logits of
one word distribution, the caption is that many independent draws — a multinomial without its
count-only constant) and ``"gaussian"`` (unit variance; decoder output = mean).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._checks import as_tensor, check_choice, check_finite, check_ndim, check_positive_int, check_scalar

__all__ = [
    "LOGVAR_RANGE",
    "LIKELIHOODS",
    "reparameterize",
    "kl_normal",
    "bernoulli_nll",
    "gaussian_nll",
    "categorical_nll",
    "elbo",
    "product_of_experts",
    "mixture_of_experts",
    "VAE",
    "MVAE",
    "MMVAE",
]

#: The range every log-variance is clamped to (variances from about 6e-6 to 1.6e5).
LOGVAR_RANGE = (-12.0, 12.0)
LIKELIHOODS = ("bernoulli", "categorical", "gaussian")
_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- checks
def _float(x, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    t = as_tensor(x, name, floating=True)
    check_finite(t, name)
    if like is not None:
        t = t.to(device=like.device, dtype=like.dtype)
    return t


def _gaussian_pair(mu, logvar) -> tuple[torch.Tensor, torch.Tensor]:
    mu = _float(mu, "mu")
    logvar = _float(logvar, "logvar")
    check_ndim(mu, "mu", 2, "(B, d)")
    if logvar.shape != mu.shape:
        raise ValueError(f"logvar: expected the shape of mu {tuple(mu.shape)}, got {tuple(logvar.shape)}")
    return mu, logvar.to(device=mu.device, dtype=mu.dtype)


def _clamp(logvar: torch.Tensor) -> torch.Tensor:
    return logvar.clamp(*LOGVAR_RANGE)


def _generator_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    if generator is None:
        return device
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    return generator.device


def _randn(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    dev = _generator_device(generator, like.device)
    return torch.randn(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def _flat_batch(x, name: str, like: torch.Tensor, dim: int) -> torch.Tensor:
    """``x`` as a finite float ``(B, dim)`` tensor on ``like``'s device (images are flattened)."""
    t = _float(x, name, like)
    if t.ndim < 2:
        raise ValueError(f"{name}: expected a batch (B, {dim}) (images (B, 1, 28, 28) are flattened), "
                         f"got shape {tuple(t.shape)}")
    t = t.flatten(1)
    if t.shape[1] != dim:
        raise ValueError(f"{name}: expected {dim} features per item, got shape {tuple(t.shape)} "
                         f"({t.shape[1]} after flattening)")
    return t


def _batch_mean(values: torch.Tensor, name: str) -> torch.Tensor:
    """The mean of per-item values ``(B,)``; an empty batch (whose mean is NaN) is refused."""
    if values.shape[0] == 0:
        raise ValueError(f"{name}: expected a batch of at least one item, got an empty batch (B = 0), "
                         "whose mean loss is undefined")
    return values.mean()


# --------------------------------------------------------------------------- building blocks
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A differentiable sample ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``.

    mu, logvar: ``(B, d)``; returns ``(B, d)``. Gradients flow to ``mu`` and ``logvar``
    because the randomness sits in ``eps``, which does not depend on them.
    """
    mu, logvar = _gaussian_pair(mu, logvar)
    eps = _randn(mu.shape, mu, generator)
    return mu + torch.exp(0.5 * _clamp(logvar)) * eps


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` per sample, in closed form.

    ``0.5 * sum_j (mu_j^2 + exp(logvar_j) - logvar_j - 1)``; mu, logvar: ``(B, d)`` -> ``(B,)``.
    """
    mu, logvar = _gaussian_pair(mu, logvar)
    lv = _clamp(logvar)
    return 0.5 * (mu.pow(2) + lv.exp() - lv - 1.0).sum(dim=1)


def _target(logits, x, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    logits = _float(logits, "logits")
    x = _float(x, name, logits)
    if logits.ndim < 1 or x.shape != logits.shape:
        raise ValueError(f"{name}: expected the shape of the decoder output {tuple(logits.shape)}, "
                         f"got {tuple(x.shape)}")
    if logits.ndim < 2:
        raise ValueError(f"logits: expected a batch (B, D), got shape {tuple(logits.shape)}")
    return logits, x


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``-log p(x | z)`` of independent Bernoulli pixels, from the decoder's logits.

    logits, x: ``(B, D)`` (or ``(B, 1, 28, 28)``), x in [0, 1] -> ``(B,)``. Computed with
    ``binary_cross_entropy_with_logits`` (stable for any logit).
    """
    logits, x = _target(logits, x, "x")
    if bool((x < 0).any()) or bool((x > 1).any()):
        raise ValueError(f"x: expected values in [0, 1] for a Bernoulli likelihood, got "
                         f"[{float(x.min()):.3g}, {float(x.max()):.3g}]")
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)


def gaussian_nll(mean: torch.Tensor, x: torch.Tensor, logvar: float | torch.Tensor = 0.0) -> torch.Tensor:
    """``-log N(x; mean, diag exp(logvar))`` per sample.

    mean, x: ``(B, D)``; logvar: a number or a tensor broadcastable to ``(B, D)``
    (clamped to :data:`LOGVAR_RANGE`) -> ``(B,)``.
    """
    mean, x = _target(mean, x, "x")
    lv = _clamp(_float(logvar, "logvar", mean).expand_as(mean))
    return 0.5 * ((x - mean).pow(2) * torch.exp(-lv) + lv + _LOG_2PI).flatten(1).sum(dim=1)


def categorical_nll(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``-sum_w counts_w * log softmax(logits)_w`` per sample: a bag of words as independent
    draws from one word distribution (the multinomial without its count-only constant).

    logits, counts: ``(B, V)``, counts >= 0 -> ``(B,)``.
    """
    logits, counts = _target(logits, counts, "counts")
    if logits.ndim != 2:
        raise ValueError(f"logits: expected (B, V), got shape {tuple(logits.shape)}")
    if bool((counts < 0).any()):
        raise ValueError(f"counts: expected non-negative word counts, got a minimum of {float(counts.min()):.3g}")
    return -(counts * F.log_softmax(logits, dim=1)).sum(dim=1)


def elbo(nll: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Evidence lower bound per sample: ``-nll - beta * kl_normal(mu, logvar)``.

    nll: ``(B,)`` reconstruction negative log-likelihood (one sample of ``z``);
    mu, logvar: ``(B, d)`` of the approximate posterior. ``beta = 1`` is the ELBO proper.
    Returns ``(B,)``; training minimises its negative mean.
    """
    mu, logvar = _gaussian_pair(mu, logvar)
    nll = _float(nll, "nll", mu)
    if nll.shape != (mu.shape[0],):
        raise ValueError(f"nll: expected one value per sample, shape ({mu.shape[0]},), got {tuple(nll.shape)}")
    beta = float(_float(beta, "beta"))
    if beta < 0:
        raise ValueError(f"beta: expected beta >= 0, got {beta}")
    return -nll - beta * kl_normal(mu, logvar)


def _experts(mus, logvars, mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack the experts to ``(M, B, d)`` and the mask to ``(M, B)`` float (1 = present)."""
    def stack(v, name):
        if isinstance(v, (list, tuple)):
            if len(v) == 0:
                raise ValueError(f"{name}: expected at least one expert, got an empty sequence")
            ts = [_float(t, f"{name}[{i}]") for i, t in enumerate(v)]
            for i, t in enumerate(ts):
                check_ndim(t, f"{name}[{i}]", 2, "(B, d)")
            shapes = {tuple(t.shape) for t in ts}
            if len(shapes) != 1:
                raise ValueError(f"{name}: expected every expert to have the same shape (B, d), got {sorted(shapes)}")
            return torch.stack([t.to(ts[0].device) for t in ts])
        t = _float(v, name)
        check_ndim(t, name, 3, "(M, B, d): one (B, d) block per expert")
        return t

    mu = stack(mus, "mus")
    lv = stack(logvars, "logvars").to(device=mu.device, dtype=mu.dtype)
    if lv.shape != mu.shape:
        raise ValueError(f"logvars: expected the shape of mus {tuple(mu.shape)}, got {tuple(lv.shape)}")
    n_exp, batch = mu.shape[:2]
    if mask is None:
        m = torch.ones(n_exp, batch, device=mu.device, dtype=mu.dtype)
    else:
        m = as_tensor(mask, "mask")
        check_ndim(m, "mask", 2, f"(B, M) = ({batch}, {n_exp}), 1/True = expert present")
        if tuple(m.shape) != (batch, n_exp):
            raise ValueError(f"mask: expected shape (B, M) = ({batch}, {n_exp}), got {tuple(m.shape)}")
        if m.dtype != torch.bool and bool(((m != 0) & (m != 1)).any()):
            raise ValueError("mask: expected 0/1 or boolean entries (1 = modality present)")
        m = m.to(device=mu.device, dtype=mu.dtype).T
    return mu, lv, m


def product_of_experts(mus: torch.Tensor | Sequence[torch.Tensor], logvars: torch.Tensor | Sequence[torch.Tensor],
                       mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The product of Gaussian experts and the prior expert ``N(0, I)``, renormalised.

    A product of Gaussians is Gaussian: precisions add, and the mean is the
    precision-weighted mean of the experts' means,

        T = 1 + sum_m T_m,   mu = (sum_m T_m mu_m) / T,   T_m = exp(-logvar_m)

    (the 1 and the 0 it multiplies are the prior expert's precision and mean).

    Args:
        mus, logvars: a sequence of M tensors ``(B, d)`` or one tensor ``(M, B, d)``.
        mask: ``(B, M)`` 0/1 or bool, 1 = modality present; a missing expert (0) is left out
            of the product. ``None``: all present. With every expert missing, the result is
            the prior, ``mu = 0``, ``logvar = 0``.

    Returns:
        ``(mu, logvar)`` of the product, each ``(B, d)``.
    """
    mu, lv, m = _experts(mus, logvars, mask)
    precision = torch.exp(-_clamp(lv)) * m[..., None]        # (M, B, d), 0 for missing experts
    total = 1.0 + precision.sum(dim=0)                      # + the prior's precision 1
    mean = (precision * mu).sum(dim=0) / total
    return mean, -torch.log(total)


def mixture_of_experts(mus: torch.Tensor | Sequence[torch.Tensor], logvars: torch.Tensor | Sequence[torch.Tensor],
                       mask: torch.Tensor | None = None, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample per row of the uniform mixture of the (present) Gaussian experts.

    Picks, for every row, one present expert uniformly at random and samples from it.

    Args:
        mus, logvars, mask: as in :func:`product_of_experts` (every row needs at least one
            present expert: a mixture of nothing is undefined).
        generator: for the choice and the sample.

    Returns:
        ``(z, expert)``: the samples ``(B, d)`` and the index of the expert each came from ``(B,)``.
    """
    mu, lv, m = _experts(mus, logvars, mask)
    if bool((m.sum(dim=0) == 0).any()):
        raise ValueError("mask: every row needs at least one present expert for a mixture, "
                         f"got {int((m.sum(dim=0) == 0).sum())} rows with none")
    dev = _generator_device(generator, mu.device)
    expert = torch.multinomial(m.T.to(dev, torch.float32), 1, generator=generator).squeeze(1).to(mu.device)
    rows = torch.arange(mu.shape[1], device=mu.device)
    eps = _randn(mu.shape[1:], mu, generator)
    z = mu[expert, rows] + torch.exp(0.5 * _clamp(lv[expert, rows])) * eps
    return z, expert


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dimension."""
    lv = _clamp(logvar)
    return -0.5 * ((z - mu).pow(2) * torch.exp(-lv) + lv + _LOG_2PI).sum(dim=-1)


# --------------------------------------------------------------------------- networks
def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _nll(likelihood: str, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(dim=1)
    if likelihood == "categorical":
        return -(x * F.log_softmax(out, dim=1)).sum(dim=1)
    return 0.5 * ((x - out).pow(2) + _LOG_2PI).sum(dim=1)


def _mean(likelihood: str, out: torch.Tensor) -> torch.Tensor:
    if likelihood == "bernoulli":
        return torch.sigmoid(out)
    if likelihood == "categorical":
        return torch.softmax(out, dim=1)
    return out


def _check_values(likelihood: str, x: torch.Tensor, name: str) -> None:
    if likelihood == "bernoulli" and (bool((x < 0).any()) or bool((x > 1).any())):
        raise ValueError(f"{name}: expected values in [0, 1] for a Bernoulli likelihood, "
                         f"got [{float(x.min()):.3g}, {float(x.max()):.3g}]")
    if likelihood == "categorical" and bool((x < 0).any()):
        raise ValueError(f"{name}: expected non-negative word counts, got a minimum of {float(x.min()):.3g}")


class _Expert(nn.Module):
    """MLP ``(B, D) -> (mu, logvar)``, each ``(B, d)``."""

    def __init__(self, input_dim: int, hidden_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.net = _mlp([input_dim, hidden_dim, 2 * latent_dim])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, _clamp(logvar)


class VAE(nn.Module):
    """A variational autoencoder with one-hidden-layer MLP encoder and decoder.

    ``encoder: x (B, D) -> h = ReLU(W1 x) -> (mu, logvar) (B, d)``,
    ``decoder: z (B, d) -> ReLU -> output (B, D)`` (logits for ``"bernoulli"``, the mean for
    ``"gaussian"`` with unit variance). Images ``(B, 1, 28, 28)`` are flattened.

    ``parameters()`` come in this order (chapter 6 copies its from-scratch weights by it): the
    encoder's first layer (weight ``(hidden_dim, D)``, bias), its second layer (weight
    ``(2 d, hidden_dim)``: the first ``d`` rows give ``mu``, the others ``logvar``; bias), then
    the decoder's two layers (``(hidden_dim, d)``, bias, ``(D, hidden_dim)``, bias).

    Args:
        input_dim: D (784 for 28×28 images).
        latent_dim: d.
        hidden_dim: width of the hidden layers.
        likelihood: ``"bernoulli"`` (x in [0, 1]) or ``"gaussian"``.
    """

    def __init__(self, input_dim: int = 784, latent_dim: int = 2, hidden_dim: int = 256,
                 likelihood: str = "bernoulli") -> None:
        super().__init__()
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        check_choice(likelihood, "likelihood", ("bernoulli", "gaussian"))
        self.likelihood = likelihood
        self.encoder = _Expert(self.input_dim, hidden_dim, self.latent_dim)
        self.decoder = _mlp([self.latent_dim, hidden_dim, self.input_dim])

    def _input(self, x: Any) -> torch.Tensor:
        t = _flat_batch(x, "x", self.decoder[0].weight, self.input_dim)
        _check_values(self.likelihood, t, "x")
        return t

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: ``(B, D)`` or ``(B, 1, 28, 28)`` -> ``(mu, logvar)``, each ``(B, d)``."""
        return self.encoder(self._input(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: ``(B, d)`` -> decoder output ``(B, D)`` (logits or mean, see the class docstring)."""
        z = _float(z, "z", self.decoder[0].weight)
        check_ndim(z, "z", 2, f"(B, {self.latent_dim})")
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"z: expected shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def sample_posterior(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw ``z ~ q(z | x)`` per item, ``(B, d)``: :meth:`encode`, then :func:`reparameterize`."""
        mu, logvar = self.encode(x)
        return reparameterize(mu, logvar, generator)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One pass through the model, what :meth:`elbo` is computed from.

        Args:
            x: ``(B, D)`` or ``(B, 1, 28, 28)``.
            generator: randomness of ``z``.

        Returns:
            ``{"mu": (B, d), "logvar": (B, d), "z": (B, d), "output": (B, D)}``: the posterior's
            parameters, one reparameterised draw ``z`` of it, and the decoder's output at ``z``
            (logits for ``"bernoulli"``, the mean for ``"gaussian"``).
        """
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator)
        return {"mu": mu, "logvar": logvar, "z": z, "output": self.decoder(z)}

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None, beta: float = 1.0) -> torch.Tensor:
        """Single-sample ELBO per item, ``(B,)`` (nats)."""
        t = self._input(x)
        out = self.forward(t, generator)
        return elbo(_nll(self.likelihood, out["output"], t), out["mu"], out["logvar"], beta)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None, beta: float = 1.0) -> torch.Tensor:
        """Negative ELBO averaged over the batch (scalar, nats per item): what training minimises.

        An empty batch has no mean: ``ValueError``.
        """
        return -_batch_mean(self.elbo(x, generator, beta), "x")

    def training_step(self, batch: torch.Tensor | Sequence[torch.Tensor], generator: torch.Generator | None = None,
                      beta: float = 1.0) -> dict[str, torch.Tensor]:
        """The loss of one training batch, for :func:`mmedu.training.fit`: ``{"loss": scalar}``.

        Args:
            batch: ``x`` ``(B, D)`` (or ``(B, 1, 28, 28)``), or a 1-tuple/list ``(x,)`` — what a
                ``DataLoader`` over ``TensorDataset(x)`` yields.
            generator, beta: as in :meth:`loss`, whose value ``"loss"`` is (the same arithmetic).
        """
        if isinstance(batch, (tuple, list)):
            if len(batch) != 1:
                raise ValueError(f"batch: expected a tensor (B, {self.input_dim}) or a 1-tuple (x,), got a "
                                 f"{type(batch).__name__} of {len(batch)} items (for (x, label) pairs pass batch[0])")
            batch = batch[0]
        return {"loss": self.loss(batch, generator, beta)}

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, n_samples: int = 100,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """Importance-sampled estimate of ``log p(x)`` per item, ``(B,)``, with ``q(z | x)`` as proposal:

        ``log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x)``, ``z_k ~ q(z | x)``.
        Its expectation lies between the ELBO (K = 1) and ``log p(x)`` (Burda et al. 2016).
        """
        n_samples = check_positive_int(n_samples, "n_samples")
        t = self._input(x)
        mu, logvar = self.encoder(t)
        logs = []
        for _ in range(n_samples):
            z = reparameterize(mu, logvar, generator)
            log_prior = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
            log_w = -_nll(self.likelihood, self.decoder(z), t) + log_prior - _log_normal(z, mu, logvar)
            logs.append(log_w)
        return torch.logsumexp(torch.stack(logs), dim=0) - math.log(n_samples)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws of the prior: ``(n, D)`` pixel probabilities (or means)."""
        n = check_positive_int(n, "n")
        w = self.decoder[0].weight
        z = _randn((n, self.latent_dim), w, generator)
        return _mean(self.likelihood, self.decoder(z))


class _MultimodalVAE(nn.Module):
    """Shared parts of :class:`MVAE` and :class:`MMVAE`: one expert and one decoder per modality."""

    def __init__(self, input_dims: Mapping[str, int], likelihoods: Mapping[str, str], latent_dim: int = 16,
                 hidden_dim: int = 256, weights: Mapping[str, float] | None = None) -> None:
        super().__init__()
        if not isinstance(input_dims, Mapping) or len(input_dims) < 2:
            raise TypeError(f"input_dims: expected a mapping of at least two modality names to sizes, "
                            f"got {input_dims!r}")
        if not isinstance(likelihoods, Mapping) or set(likelihoods) != set(input_dims):
            raise ValueError(f"likelihoods: expected one likelihood per modality {sorted(input_dims)}, "
                             f"got {likelihoods!r}")
        self.modalities = tuple(input_dims)
        self.input_dims = {m: check_positive_int(d, f"input_dims[{m!r}]") for m, d in input_dims.items()}
        for m, lik in likelihoods.items():
            check_choice(lik, f"likelihoods[{m!r}]", LIKELIHOODS)
        self.likelihoods = dict(likelihoods)
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        weights = {m: 1.0 for m in self.modalities} if weights is None else dict(weights)
        if set(weights) != set(self.modalities):
            raise ValueError(f"weights: expected a non-negative weight per modality {list(self.modalities)}, "
                             f"got {weights!r}")
        self.weights = {m: check_scalar(w, f"weights[{m!r}]", ge=0, tensor=True) for m, w in weights.items()}
        self.experts = nn.ModuleDict({m: _Expert(d, hidden_dim, self.latent_dim) for m, d in self.input_dims.items()})
        self.decoders = nn.ModuleDict({m: _mlp([self.latent_dim, hidden_dim, d]) for m, d in self.input_dims.items()})

    # ------------------------------------------------------------ inputs
    def _like(self) -> torch.Tensor:
        return next(iter(self.decoders.values()))[0].weight

    def _inputs(self, inputs: Any) -> dict[str, torch.Tensor]:
        """Validate a dict of present modalities (missing: absent or None) -> flat tensors."""
        if not isinstance(inputs, Mapping):
            raise TypeError(f"inputs: expected a dict {{modality: tensor}}, got {type(inputs).__name__}")
        unknown = set(inputs) - set(self.modalities)
        if unknown:
            raise ValueError(f"inputs: unknown modalities {sorted(unknown)}; expected some of {list(self.modalities)}")
        out = {}
        for m in self.modalities:
            if inputs.get(m) is not None:
                t = _flat_batch(inputs[m], m, self._like(), self.input_dims[m])
                _check_values(self.likelihoods[m], t, m)
                out[m] = t
        if not out:
            raise ValueError(f"inputs: expected at least one of the modalities {list(self.modalities)}, got none")
        sizes = {m: t.shape[0] for m, t in out.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"inputs: expected the same batch size for every modality, got {sizes}")
        return out

    def _mask(self, mask: Any, present: Sequence[str], batch: int) -> torch.Tensor:
        """(B, M) float mask over self.modalities: given mask AND presence in the inputs."""
        like = self._like()
        m = torch.tensor([[1.0 if name in present else 0.0 for name in self.modalities]], device=like.device,
                         dtype=like.dtype).expand(batch, -1)
        if mask is None:
            return m
        t = as_tensor(mask, "mask")
        M = len(self.modalities)
        if tuple(t.shape) != (batch, M):
            raise ValueError(f"mask: expected shape (B, M) = ({batch}, {M}) in the order {list(self.modalities)}, "
                             f"got {tuple(t.shape)}")
        if t.dtype != torch.bool and bool(((t != 0) & (t != 1)).any()):
            raise ValueError("mask: expected 0/1 or boolean entries (1 = modality present)")
        return m * t.to(device=like.device, dtype=like.dtype)

    def unimodal(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Each present modality's expert: ``{m: (mu, logvar)}``, each ``(B, d)``."""
        x = self._inputs(inputs)
        return {m: self.experts[m](t) for m, t in x.items()}

    def _decode_given(self, z: torch.Tensor, x: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The decoders' outputs (logits or means) at z for the given modalities: {m: (B, D_m)}."""
        return {m: self.decoders[m](z) for m in x}

    def _recon(self, outputs: Mapping[str, torch.Tensor], x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum over the given modalities of -log p(x_m | z), (B,), from the decoders' outputs at z."""
        return sum(self.weights[m] * _nll(self.likelihoods[m], outputs[m], t) for m, t in x.items())

    def training_step(self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None,
                      beta: float = 1.0) -> dict[str, torch.Tensor]:
        """The loss of one training batch, for :func:`mmedu.training.fit`: ``{"loss": scalar}``.

        Args:
            batch: ``{modality: (B, D_m)}``; a ``"label"`` entry (what
                :class:`mmedu.datasets.MultimodalDataset` adds) is ignored unless ``"label"`` is
                one of the model's modalities.
            generator, beta: as in :meth:`loss`, whose value ``"loss"`` is (the same arithmetic).
        """
        if not isinstance(batch, Mapping):
            raise TypeError(f"batch: expected a dict {{modality: tensor}} over {list(self.modalities)}, "
                            f"got {type(batch).__name__}")
        if "label" in batch and "label" not in self.modalities:
            batch = {k: v for k, v in batch.items() if k != "label"}
        return {"loss": self.loss(batch, generator, beta)}

    def decode(self, z: torch.Tensor, to_modality: str) -> torch.Tensor:
        """z ``(B, d)`` -> the decoder's mean of ``to_modality``: pixel probabilities, word probabilities
        or the Gaussian mean, ``(B, D_m)``."""
        check_choice(to_modality, "to_modality", self.modalities)
        z = _float(z, "z", self._like())
        check_ndim(z, "z", 2, f"(B, {self.latent_dim})")
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"z: expected shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return _mean(self.likelihoods[to_modality], self.decoders[to_modality](z))

    def _source(self, x: Any, from_modality: Any) -> dict[str, torch.Tensor]:
        if isinstance(from_modality, str):
            names = [from_modality]
        elif isinstance(from_modality, (list, tuple)) and from_modality:
            names = list(from_modality)
        else:
            raise TypeError(f"from_modality: expected a modality name, a list of names or None, got {from_modality!r}")
        for n in names:
            check_choice(n, "from_modality", self.modalities)
        if isinstance(x, Mapping):
            missing = [n for n in names if x.get(n) is None]
            if missing:
                raise ValueError(f"x: from_modality names {missing}, which the inputs do not contain")
            return {n: x[n] for n in names}
        if len(names) != 1:
            raise TypeError("x: with several source modalities pass a dict {modality: tensor}")
        return {names[0]: x}

    @torch.no_grad()
    def generate(self, x: torch.Tensor | Mapping[str, torch.Tensor] | None = None,
                 from_modality: str | Sequence[str] | None = None, to_modality: str = "image", *,
                 n: int | None = None, sample: bool = False, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Generate ``to_modality`` conditioned on ``from_modality`` (or from the prior).

        Args:
            x: the source modality's batch ``(B, D_from)`` (or a dict ``{modality: tensor}``).
            from_modality: a modality name, a list of names (joint conditioning), or ``None`` for
                unconditional samples from the prior (then give ``n`` and no ``x``).
            to_modality: the modality to produce.
            n: the number of prior samples (with ``from_modality=None``).  With ``x`` there is
                one output per row of ``x``; an ``n`` that differs from that is an error.
            sample: draw ``z`` from the posterior (``True``) or use its mean (``False``, default;
                for the mixture, the mean of one randomly chosen expert).
            generator: randomness of ``z`` (and of the mixture's choice).

        Returns:
            ``(B, D_to)`` decoder means: pixel probabilities, word probabilities or Gaussian means.
        """
        check_choice(to_modality, "to_modality", self.modalities)
        if from_modality is None:
            if x is not None or n is None:
                raise ValueError("from_modality=None samples the prior: pass n (the number of samples) and no x")
            n = check_positive_int(n, "n")
            z = _randn((n, self.latent_dim), self._like(), generator)
            return self.decode(z, to_modality)
        if n is not None:
            n = check_positive_int(n, "n")
        z = self._latent(self._source(x, from_modality), sample, generator)
        if n is not None and z.shape[0] != n:
            raise ValueError(f"n: generating from {from_modality!r} gives one output per row of x "
                             f"({z.shape[0]} rows), got n={n}; leave n out (it is for from_modality=None)")
        return self.decode(z, to_modality)

    def _latent(self, x: dict[str, torch.Tensor], sample: bool, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError


class MVAE(_MultimodalVAE):
    """Multimodal VAE with a product-of-experts posterior (Wu & Goodman 2018).

    ``q(z | X) ∝ p(z) prod_m q_m(z | x_m)`` over the modalities present, computed in closed
    form by :func:`product_of_experts`; a missing modality is simply left out of the product.
    Training (:meth:`loss`) sums the ELBO of the joint and of every single modality, so that each
    expert alone also gives a usable posterior (the paper's sub-sampling with the single-modality
    subsets).

    Args:
        input_dims: ``{modality: D_m}``, e.g. ``{"image": 784, "caption": V}`` (≥ 2 modalities).
        likelihoods: ``{modality: "bernoulli" | "categorical" | "gaussian"}``.
        latent_dim, hidden_dim: sizes of z and of each MLP's hidden layer.
        weights: ``{modality: λ_m}`` scales each reconstruction term (default 1): the paper's
            λ, which keeps a 784-pixel image from drowning a 20-word caption.
    """

    def encode(self, inputs: Mapping[str, torch.Tensor], mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The PoE posterior ``(mu, logvar)``, each ``(B, d)``, of the present modalities.

        inputs: ``{modality: (B, D_m)}``; a missing modality is absent or ``None``.
        mask: optional ``(B, M)`` (order ``self.modalities``), 0 = this item's modality is missing.
        """
        x = self._inputs(inputs)
        batch = next(iter(x.values())).shape[0]
        m = self._mask(mask, list(x), batch)
        like = self._like()
        zeros = torch.zeros(batch, self.latent_dim, device=like.device, dtype=like.dtype)
        mus, lvs = [], []
        for name in self.modalities:
            if name in x:
                mu, lv = self.experts[name](x[name])
            else:
                mu, lv = zeros, zeros
            mus.append(mu)
            lvs.append(lv)
        return product_of_experts(mus, lvs, m)

    def sample_posterior(self, inputs: Mapping[str, torch.Tensor], generator: torch.Generator | None = None, *,
                         mask: torch.Tensor | None = None) -> torch.Tensor:
        """One draw ``z`` ``(B, d)`` of the PoE posterior: :meth:`encode`, then :func:`reparameterize`."""
        mu, logvar = self.encode(inputs, mask)
        return reparameterize(mu, logvar, generator)

    def forward(self, inputs: Mapping[str, torch.Tensor], generator: torch.Generator | None = None, *,
                mask: torch.Tensor | None = None) -> dict[str, Any]:
        """One pass through the model, what :meth:`elbo` is computed from.

        Args:
            inputs, mask: as in :meth:`encode`.
            generator: randomness of ``z``.

        Returns:
            ``{"mu": (B, d), "logvar": (B, d), "z": (B, d), "output": {m: (B, D_m)}}``: the PoE
            posterior's parameters, one reparameterised draw ``z`` of it, and each given
            modality's decoder output at ``z`` (logits for ``"bernoulli"`` and ``"categorical"``,
            the mean for ``"gaussian"``; :meth:`generate` decodes any modality from any other).
        """
        return self._forward(self._inputs(inputs), generator, mask)

    def _forward(self, x: dict[str, torch.Tensor], generator: torch.Generator | None, mask: Any = None
                 ) -> dict[str, Any]:
        mu, logvar = self.encode(x, mask)
        z = reparameterize(mu, logvar, generator)
        return {"mu": mu, "logvar": logvar, "z": z, "output": self._decode_given(z, x)}

    def elbo(self, inputs: Mapping[str, torch.Tensor], generator: torch.Generator | None = None,
             beta: float = 1.0) -> torch.Tensor:
        """Single-sample ELBO ``(B,)`` of the given modalities under the PoE posterior (from :meth:`forward`)."""
        x = self._inputs(inputs)
        out = self._forward(x, generator)
        return elbo(self._recon(out["output"], x), out["mu"], out["logvar"], beta)

    def loss(self, inputs: Mapping[str, torch.Tensor], generator: torch.Generator | None = None,
             beta: float = 1.0) -> torch.Tensor:
        """Training loss (scalar): minus the batch mean of ``ELBO(X) + sum_m ELBO(x_m)``."""
        x = self._inputs(inputs)
        total = -self.elbo(x, generator, beta)
        if len(x) > 1:
            for m in x:
                total = total - self.elbo({m: x[m]}, generator, beta)
        return _batch_mean(total, "inputs")

    def _latent(self, x: dict[str, torch.Tensor], sample: bool, generator: torch.Generator | None) -> torch.Tensor:
        return self.sample_posterior(x, generator) if sample else self.encode(x)[0]


class MMVAE(_MultimodalVAE):
    """Multimodal VAE with a mixture-of-experts posterior (Shi et al. 2019).

    ``q(z | X) = (1/M) sum_m q_m(z | x_m)`` over the modalities present. Each expert must
    explain *every* modality on its own: training (:meth:`loss`) uses the stratified ELBO
    with one sample per expert (the paper's K = 1 case, without its importance weighting),

        ELBO = (1/M) sum_m [ sum_n log p(x_n | z_m) + log p(z_m) - log q(z_m | X) ],
        z_m ~ q_m(z | x_m),

    where ``log q(z | X)`` is the mixture's log-density (a log-sum-exp over the experts). It is
    a lower bound on ``log p(X)`` because each bracket is a single-sample ELBO term under the
    mixture, sampled stratified by component.

    Arguments as in :class:`MVAE`.
    """

    def _mixture_log_q(self, z: torch.Tensor, posts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        logs = torch.stack([_log_normal(z, mu, lv) for mu, lv in posts])          # (M, B)
        return torch.logsumexp(logs, dim=0) - math.log(len(posts))

    def elbo(self, inputs: Mapping[str, torch.Tensor], generator: torch.Generator | None = None,
             beta: float = 1.0) -> torch.Tensor:
        """Stratified single-sample ELBO ``(B,)`` of the given modalities under the mixture posterior."""
        x = self._inputs(inputs)
        beta = float(_float(beta, "beta"))
        if beta < 0:
            raise ValueError(f"beta: expected beta >= 0, got {beta}")
        posts = [self.experts[m](t) for m, t in x.items()]
        terms = []
        for mu, lv in posts:
            z = reparameterize(mu, lv, generator)
            log_prior = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
            terms.append(-self._recon(self._decode_given(z, x), x) - beta * (self._mixture_log_q(z, posts) - log_prior))
        return torch.stack(terms).mean(dim=0)

    def loss(self, inputs: Mapping[str, torch.Tensor], generator: torch.Generator | None = None,
             beta: float = 1.0) -> torch.Tensor:
        """Training loss (scalar): minus the batch mean of the stratified ELBO."""
        return -_batch_mean(self.elbo(inputs, generator, beta), "inputs")

    def _components(self, x: dict[str, torch.Tensor], mask: Any
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The experts stacked ``(M, B, d)`` (a missing one's slot: 0, 0) and the presence mask ``(B, M)``."""
        batch = next(iter(x.values())).shape[0]
        m = self._mask(mask, list(x), batch)
        like = self._like()
        zeros = torch.zeros(batch, self.latent_dim, device=like.device, dtype=like.dtype)
        posts = [self.experts[n](x[n]) if n in x else (zeros, zeros) for n in self.modalities]
        present = m.T[..., None] > 0                                                  # (M, B, 1)
        mu = torch.where(present, torch.stack([p[0] for p in posts]), 0.0)
        logvar = torch.where(present, torch.stack([p[1] for p in posts]), 0.0)
        return mu, logvar, m

    def encode(self, inputs: Mapping[str, torch.Tensor], mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The parameters ``(mu, logvar)`` of the mixture's components: the experts, each ``(M, B, d)``.

        The posterior is the uniform mixture of the experts present, ``q(z | X) = (1/M') sum_m
        N(mu[m], diag exp(logvar[m]))``; it is not one Gaussian, so unlike :meth:`MVAE.encode` this
        returns all ``M = len(self.modalities)`` of them, stacked in the order ``self.modalities``.
        The slot of an expert that is missing for an item (its modality absent, ``None``, or 0 in
        ``mask``) holds ``mu = 0``, ``logvar = 0`` and is not part of that item's mixture.
        :meth:`sample_posterior` draws from the mixture.

        inputs: ``{modality: (B, D_m)}``; a missing modality is absent or ``None``.
        mask: optional ``(B, M)`` (order ``self.modalities``), 0 = this item's modality is missing.
        """
        mu, logvar, _ = self._components(self._inputs(inputs), mask)
        return mu, logvar

    def _draw(self, x: dict[str, torch.Tensor], mask: Any, generator: torch.Generator | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar, m = self._components(x, mask)
        z, expert = mixture_of_experts(mu, logvar, m, generator)
        return mu, logvar, z, expert

    def sample_posterior(self, inputs: Mapping[str, torch.Tensor], generator: torch.Generator | None = None, *,
                         mask: torch.Tensor | None = None) -> torch.Tensor:
        """One draw ``z`` ``(B, d)`` of the mixture posterior: for each item, one present expert
        chosen uniformly at random, then a reparameterised draw from it (:func:`mixture_of_experts`;
        :meth:`forward` also returns which expert each row came from)."""
        return self._draw(self._inputs(inputs), mask, generator)[2]

    def forward(self, inputs: Mapping[str, torch.Tensor], generator: torch.Generator | None = None, *,
                mask: torch.Tensor | None = None) -> dict[str, Any]:
        """One pass through the model: encode, draw ``z`` from the mixture, decode.

        Args:
            inputs, mask: as in :meth:`encode`.
            generator: randomness of the expert chosen for each item and of ``z``.

        Returns:
            ``{"mu": (M, B, d), "logvar": (M, B, d), "z": (B, d), "expert": (B,), "output": {m: (B, D_m)}}``:
            the experts' parameters (:meth:`encode`), one draw ``z`` of the mixture as in
            :meth:`sample_posterior`, the index into ``self.modalities`` of the expert each row of
            ``z`` came from, and each given modality's decoder output at ``z`` (logits for
            ``"bernoulli"`` and ``"categorical"``, the mean for ``"gaussian"``). The training
            objective (:meth:`elbo`) draws one ``z`` from *every* expert instead (stratified).
        """
        x = self._inputs(inputs)
        mu, logvar, z, expert = self._draw(x, mask, generator)
        return {"mu": mu, "logvar": logvar, "z": z, "expert": expert, "output": self._decode_given(z, x)}

    def _latent(self, x: dict[str, torch.Tensor], sample: bool, generator: torch.Generator | None) -> torch.Tensor:
        if sample:
            return self.sample_posterior(x, generator)
        posts = [self.experts[m](t) for m, t in x.items()]
        if len(posts) == 1:
            return posts[0][0]
        # the mean of one randomly chosen expert per row
        mus = torch.stack([p[0] for p in posts])
        dev = _generator_device(generator, mus.device)
        pick = torch.randint(len(posts), (mus.shape[1],), generator=generator, device=dev).to(mus.device)
        return mus[pick, torch.arange(mus.shape[1], device=mus.device)]
