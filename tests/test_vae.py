"""Tests of mmedu.vae against independent references (torch.distributions, closed forms,
brute-force loops) and of the models' training behaviour."""

import inspect
import math
import typing

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Independent, Normal, kl_divergence

from mmedu.vae import (
    LOGVAR_RANGE,
    MMVAE,
    MVAE,
    VAE,
    bernoulli_nll,
    categorical_nll,
    elbo,
    gaussian_nll,
    kl_normal,
    mixture_of_experts,
    product_of_experts,
    reparameterize,
)

DIMS = {"image": 12, "caption": 7}
LIKS = {"image": "bernoulli", "caption": "categorical"}


def _batch(g, n=16):
    """Structured toy pairs: 3 classes, each with its own pixel pattern and its own words."""
    y = torch.randint(3, (n,), generator=g)
    protos = (torch.arange(3)[:, None] == torch.arange(DIMS["image"])[None, :] % 3).float()
    image = (torch.rand(n, DIMS["image"], generator=g) < 0.1 + 0.8 * protos[y]).float()
    rates = 0.2 + 2.0 * (torch.arange(3)[:, None] == torch.arange(DIMS["caption"])[None, :] % 3).float()
    caption = torch.poisson(rates[y], generator=g)
    return {"image": image, "caption": caption}


# ----------------------------------------------------------------------------- building blocks
def test_kl_normal_equals_torch_distributions(rng):
    mu, logvar = torch.randn(6, 4, generator=rng), torch.randn(6, 4, generator=rng)
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros(4), torch.ones(4)), 1)
    torch.testing.assert_close(kl_normal(mu, logvar), kl_divergence(q, p))


def test_kl_normal_is_zero_at_the_prior():
    torch.testing.assert_close(kl_normal(torch.zeros(3, 5), torch.zeros(3, 5)), torch.zeros(3))


def test_likelihoods_equal_torch_distributions(rng):
    logits = 3 * torch.randn(5, 9, generator=rng)
    x = (torch.rand(5, 9, generator=rng) > 0.5).float()
    torch.testing.assert_close(bernoulli_nll(logits, x), -Bernoulli(logits=logits).log_prob(x).sum(1))
    mean, y, lv = torch.randn(5, 9, generator=rng), torch.randn(5, 9, generator=rng), torch.randn(5, 9, generator=rng)
    torch.testing.assert_close(gaussian_nll(mean, y, lv), -Normal(mean, torch.exp(0.5 * lv)).log_prob(y).sum(1))
    counts = torch.poisson(torch.ones(5, 9), generator=rng)
    # brute force: the log-probability of each word occurrence, summed
    want = torch.stack([-sum(Categorical(logits=logits[i]).log_prob(torch.tensor(w)) * counts[i, w]
                             for w in range(9)) for i in range(5)])
    torch.testing.assert_close(categorical_nll(logits, counts), want)


def test_elbo_combines_nll_and_kl(rng):
    mu, lv, nll = torch.randn(4, 3, generator=rng), torch.randn(4, 3, generator=rng), torch.rand(4, generator=rng)
    torch.testing.assert_close(elbo(nll, mu, lv, beta=0.5), -nll - 0.5 * kl_normal(mu, lv))


def test_reparameterize_statistics_and_gradients(rng):
    mu = torch.tensor([[1.0, -2.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True)
    z = reparameterize(mu.expand(20000, 2), logvar.expand(20000, 2), torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 2.0]), atol=0.05, rtol=0)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None
    torch.testing.assert_close(mu.grad, torch.full((1, 2), 20000.0))
    assert float(logvar.grad.abs().sum()) > 0
    # d z / d logvar = 0.5 * sigma * eps, by finite differences on one fixed eps
    m, lv = torch.zeros(1, 1), torch.zeros(1, 1, requires_grad=True)
    zz = reparameterize(m, lv, torch.Generator().manual_seed(3))
    zz.backward()
    h = 1e-3
    plus = reparameterize(m, lv.detach() + h, torch.Generator().manual_seed(3))
    minus = reparameterize(m, lv.detach() - h, torch.Generator().manual_seed(3))
    torch.testing.assert_close(lv.grad, (plus - minus) / (2 * h), atol=1e-3, rtol=1e-3)


def test_reparameterize_is_reproducible_with_a_generator(rng):
    mu, lv = torch.randn(3, 2, generator=rng), torch.randn(3, 2, generator=rng)
    a = reparameterize(mu, lv, torch.Generator().manual_seed(7))
    b = reparameterize(mu, lv, torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)


def test_poe_single_expert_with_prior_closed_form(rng):
    mu, lv = torch.randn(5, 3, generator=rng), torch.randn(5, 3, generator=rng)
    m, v = product_of_experts([mu], [lv])
    var = torch.exp(lv)
    # N(mu, var) * N(0, 1): variance var / (1 + var), mean mu / (1 + var)
    torch.testing.assert_close(v, torch.log(var / (1 + var)))
    torch.testing.assert_close(m, mu / (1 + var))


def test_poe_precision_weighting_of_two_experts(rng):
    mu1, mu2 = torch.randn(4, 2, generator=rng), torch.randn(4, 2, generator=rng)
    lv1, lv2 = torch.randn(4, 2, generator=rng), torch.randn(4, 2, generator=rng)
    m, v = product_of_experts(torch.stack([mu1, mu2]), torch.stack([lv1, lv2]))
    t1, t2 = torch.exp(-lv1), torch.exp(-lv2)
    torch.testing.assert_close(v, -torch.log(1 + t1 + t2))
    torch.testing.assert_close(m, (t1 * mu1 + t2 * mu2) / (1 + t1 + t2))
    # brute force: the normalised product of the three densities on a grid, one coordinate
    grid = torch.linspace(-8, 8, 40001, dtype=torch.float64)
    dens = (Normal(mu1[0, 0].double(), torch.exp(0.5 * lv1[0, 0]).double()).log_prob(grid)
            + Normal(mu2[0, 0].double(), torch.exp(0.5 * lv2[0, 0]).double()).log_prob(grid)
            + Normal(0.0, 1.0).log_prob(grid)).exp()
    dens = dens / dens.sum()
    mean = (grid * dens).sum()
    var = ((grid - mean) ** 2 * dens).sum()
    assert abs(float(mean) - float(m[0, 0])) < 1e-4
    assert abs(math.log(float(var)) - float(v[0, 0])) < 1e-3


def test_poe_mask_drops_missing_experts(rng):
    mu1, mu2 = torch.randn(3, 2, generator=rng), torch.randn(3, 2, generator=rng)
    lv1, lv2 = torch.randn(3, 2, generator=rng), torch.randn(3, 2, generator=rng)
    mask = torch.tensor([[1, 1], [1, 0], [0, 0]])
    m, v = product_of_experts([mu1, mu2], [lv1, lv2], mask=mask)
    both = product_of_experts([mu1, mu2], [lv1, lv2])
    only1 = product_of_experts([mu1], [lv1])
    torch.testing.assert_close(m[0], both[0][0])
    torch.testing.assert_close(m[1], only1[0][1])
    torch.testing.assert_close(v[1], only1[1][1])
    torch.testing.assert_close(m[2], torch.zeros(2))      # no expert: the prior
    torch.testing.assert_close(v[2], torch.zeros(2))
    # a garbage expert behind a 0 in the mask changes nothing
    m2, _ = product_of_experts([mu1, 1e3 * torch.ones(3, 2)], [lv1, -5 * torch.ones(3, 2)],
                               mask=torch.tensor([[True, False]] * 3))
    torch.testing.assert_close(m2, only1[0])


def test_mixture_of_experts_samples_each_present_expert(rng):
    mus = torch.stack([torch.full((4000, 1), -5.0), torch.full((4000, 1), 5.0)])
    lvs = torch.full((2, 4000, 1), math.log(0.01))
    z, k = mixture_of_experts(mus, lvs, generator=torch.Generator().manual_seed(0))
    assert abs(float((k == 1).float().mean()) - 0.5) < 0.03
    torch.testing.assert_close(z[k == 0].mean(), torch.tensor(-5.0), atol=0.02, rtol=0)
    torch.testing.assert_close(z[k == 1].mean(), torch.tensor(5.0), atol=0.02, rtol=0)
    mask = torch.tensor([[0, 1]] * 4000)
    z, k = mixture_of_experts(mus, lvs, mask=mask, generator=torch.Generator().manual_seed(0))
    assert bool((k == 1).all()) and float(z.min()) > 4
    with pytest.raises(ValueError, match="at least one present expert"):
        mixture_of_experts(mus, lvs, mask=torch.zeros(4000, 2))


def test_no_nan_for_extreme_inputs():
    big = torch.tensor([[1e6, -1e6, 0.0]])
    assert torch.isfinite(kl_normal(big, big)).all()
    assert torch.isfinite(kl_normal(torch.zeros(1, 3), big)).all()
    assert torch.isfinite(reparameterize(big, big, torch.Generator().manual_seed(0))).all()
    m, v = product_of_experts([big, -big], [big, -big])
    assert torch.isfinite(m).all() and torch.isfinite(v).all()
    assert LOGVAR_RANGE[0] - 2 <= float(v.min())
    assert torch.isfinite(bernoulli_nll(torch.tensor([[1e4, -1e4]]), torch.tensor([[0.0, 1.0]]))).all()
    assert torch.isfinite(categorical_nll(torch.tensor([[1e4, -1e4]]), torch.tensor([[1.0, 3.0]]))).all()
    assert torch.isfinite(gaussian_nll(big, -big, big)).all()
    vae = VAE(input_dim=3, latent_dim=2, hidden_dim=4, likelihood="gaussian")
    assert torch.isfinite(vae.loss(torch.tensor([[1e4, -1e4, 0.0]]), torch.Generator().manual_seed(0)))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="logvar: expected the shape of mu"):
        kl_normal(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"mu: expected a 2-D tensor"):
        kl_normal(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        reparameterize(torch.tensor([[float("nan")]]), torch.zeros(1, 1))
    with pytest.raises(TypeError, match="generator"):
        reparameterize(torch.zeros(1, 1), torch.zeros(1, 1), generator=0)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        bernoulli_nll(torch.zeros(1, 2), torch.tensor([[0.5, 2.0]]))
    with pytest.raises(ValueError, match="non-negative word counts"):
        categorical_nll(torch.zeros(1, 2), torch.tensor([[1.0, -1.0]]))
    with pytest.raises(ValueError, match="shape of the decoder output"):
        bernoulli_nll(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="one value per sample"):
        elbo(torch.zeros(3), torch.zeros(2, 1), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="beta"):
        elbo(torch.zeros(2), torch.zeros(2, 1), torch.zeros(2, 1), beta=-1)
    with pytest.raises(ValueError, match=r"mask: expected shape \(B, M\) = \(2, 2\)"):
        product_of_experts([torch.zeros(2, 1)] * 2, [torch.zeros(2, 1)] * 2, mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="same shape"):
        product_of_experts([torch.zeros(2, 1), torch.zeros(3, 1)], [torch.zeros(2, 1), torch.zeros(3, 1)])
    with pytest.raises(ValueError, match="at least one expert"):
        product_of_experts([], [])
    vae = VAE(input_dim=12, latent_dim=2, hidden_dim=8)
    with pytest.raises(ValueError, match="expected 12 features"):
        vae.loss(torch.rand(4, 13))
    with pytest.raises(ValueError, match="likelihood"):
        VAE(likelihood="poisson")
    model = MVAE(DIMS, LIKS, latent_dim=2, hidden_dim=8)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="unknown modalities"):
        model.loss({"audio": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="at least one of the modalities"):
        model.encode({"image": None})
    with pytest.raises(ValueError, match="same batch size"):
        model.loss({"image": torch.zeros(2, 12), "caption": torch.zeros(3, 7)})
    with pytest.raises(ValueError, match="to_modality"):
        model.generate(torch.zeros(2, 7), "caption", "audio")
    with pytest.raises(ValueError, match="pass n"):
        model.generate(None, None, "image")
    with pytest.raises(ValueError, match="expected 7 features"):
        model.generate(torch.zeros(2, 12), "caption", "image", generator=g)
    with pytest.raises(ValueError, match="likelihoods"):
        MMVAE(DIMS, {"image": "bernoulli"})


@pytest.mark.parametrize("cls", [VAE, MVAE, MMVAE])
def test_loss_of_an_empty_batch_is_refused(cls):
    # the mean over no items is NaN, which would silently poison a training run
    model = VAE(12, 2, 8) if cls is VAE else cls(DIMS, LIKS, latent_dim=2, hidden_dim=8)
    empty = torch.zeros(0, 12) if cls is VAE else {"image": torch.zeros(0, 12), "caption": torch.zeros(0, 7)}
    with pytest.raises(ValueError, match=r"expected a batch of at least one item, got an empty batch \(B = 0\)"):
        model.loss(empty)


@pytest.mark.parametrize("bad, error", [(float("nan"), ValueError), (float("inf"), ValueError),
                                        (-1.0, ValueError), ("1", TypeError), (None, TypeError)])
def test_multimodal_weights_must_be_finite_and_non_negative(bad, error):
    with pytest.raises(error, match=r"weights\['caption'\]: expected .*real number in \[0, inf\)"):
        MVAE(DIMS, LIKS, weights={"image": 1.0, "caption": bad})
    with pytest.raises(error, match=r"weights\['caption'\]"):
        MMVAE(DIMS, LIKS, weights={"image": 1.0, "caption": bad})


def test_multimodal_weights_accept_numpy_scalars():
    import numpy as np

    model = MVAE(DIMS, LIKS, weights={"image": np.float32(0.5), "caption": np.int64(2)})
    assert model.weights == {"image": 0.5, "caption": 2.0}


def test_generate_refuses_an_n_that_disagrees_with_x():
    # n is the number of prior samples; conditioned on x there is one output per row of x,
    # and an n that says otherwise used to be silently ignored
    model = MVAE(DIMS, LIKS, latent_dim=2, hidden_dim=8)
    x = torch.rand(3, 12)
    with pytest.raises(ValueError,
                       match=r"n: generating from 'image' gives one output per row of x \(3 rows\), got n=5"):
        model.generate(x, "image", "caption", n=5)
    assert torch.equal(model.generate(x, "image", "caption", n=3), model.generate(x, "image", "caption"))
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        model.generate(x, "image", "caption", n=0)


# ----------------------------------------------------------------------------- models
def test_vae_loss_matches_its_parts(rng):
    vae = VAE(input_dim=12, latent_dim=2, hidden_dim=8)
    x = (torch.rand(5, 12, generator=rng) > 0.5).float()
    out = vae(x, torch.Generator().manual_seed(1))
    want = bernoulli_nll(out["output"], x) + kl_normal(out["mu"], out["logvar"])
    torch.testing.assert_close(vae.loss(x, torch.Generator().manual_seed(1)), want.mean())


def test_importance_sampled_log_likelihood_bounds_the_elbo(rng):
    torch.manual_seed(0)
    vae = VAE(input_dim=12, latent_dim=2, hidden_dim=8)
    x = (torch.rand(64, 12, generator=rng) > 0.5).float()
    with torch.no_grad():
        # expectation of the single-sample ELBO, estimated with many samples
        elbo_mean = torch.stack([vae.elbo(x, rng) for _ in range(200)]).mean(0)
    iw = vae.log_likelihood(x, n_samples=500, generator=rng)
    assert float(iw.mean()) >= float(elbo_mean.mean())
    assert float((iw >= elbo_mean - 0.05).float().mean()) > 0.95
    # and the ELBO is exact for K = 1 in expectation: the gap is KL(q || posterior) >= 0
    iw1 = torch.stack([vae.log_likelihood(x, n_samples=1, generator=rng) for _ in range(200)]).mean(0)
    assert abs(float(iw1.mean() - elbo_mean.mean())) < 0.1


@pytest.mark.parametrize("cls", [VAE, MVAE, MMVAE])
def test_short_fixed_seed_run_lowers_the_loss(cls):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    data = _batch(g, 128)
    if cls is VAE:
        model, loss = VAE(12, 2, 16), (lambda m: m.loss(data["image"], g))
    else:
        model = cls(DIMS, LIKS, latent_dim=3, hidden_dim=16)
        loss = lambda m: m.loss(data, g)     # noqa: E731
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        before = float(torch.stack([loss(model) for _ in range(20)]).mean())
    for _ in range(150):
        opt.zero_grad()
        loss(model).backward()
        opt.step()
    with torch.no_grad():
        after = float(torch.stack([loss(model) for _ in range(20)]).mean())
    assert after < before - 1.0


@pytest.mark.parametrize("cls", [VAE, MVAE, MMVAE])
def test_train_step_changes_every_weight(cls):
    g = torch.Generator().manual_seed(0)
    data = _batch(g, 8)
    model = VAE(12, 2, 8) if cls is VAE else cls(DIMS, LIKS, latent_dim=2, hidden_dim=8)
    call = (lambda: model.loss(data["image"], g)) if cls is VAE else (lambda: model.loss(data, g))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    opt.zero_grad()
    call().backward()
    opt.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == set(before)          # every parameter tensor receives a gradient


@pytest.mark.parametrize("cls", [VAE, MVAE, MMVAE])
def test_randomness_comes_only_from_the_generator_in_either_mode(cls):
    # The models have no dropout: train and eval mode compute the same loss, and every random
    # draw (z, the mixture's expert) comes from the generator passed in, never from the global
    # RNG, so evaluating during training does not shift a seeded run.
    data = _batch(torch.Generator().manual_seed(0), 8)
    torch.manual_seed(0)
    model = VAE(12, 2, 8) if cls is VAE else cls(DIMS, LIKS, latent_dim=2, hidden_dim=8)
    x = data["image"] if cls is VAE else data
    state = torch.get_rng_state()
    with torch.no_grad():
        in_train = model.train().loss(x, torch.Generator().manual_seed(5))
        in_eval = model.eval().loss(x, torch.Generator().manual_seed(5))
        if cls is VAE:
            draws = [model.sample(4, torch.Generator().manual_seed(6)) for _ in range(2)]
        else:
            draws = [model.generate(data["caption"], "caption", "image", sample=True,
                                    generator=torch.Generator().manual_seed(6)) for _ in range(2)]
            draws += [model.generate(data, ["image", "caption"], "caption",
                                     generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(in_train, in_eval)
    assert all(torch.equal(a, b) for a, b in zip(draws[::2], draws[1::2]))


def test_mvae_missing_modality_equals_the_unimodal_posterior(rng):
    model = MVAE(DIMS, LIKS, latent_dim=3, hidden_dim=8)
    data = _batch(rng, 6)
    with torch.no_grad():
        img_only = model.encode({"image": data["image"]})
        also_none = model.encode({"image": data["image"], "caption": None})
        mu_i, lv_i = model.experts["image"](data["image"])
        want = product_of_experts([mu_i], [lv_i])
        masked = model.encode(data, mask=torch.tensor([[1, 0]] * 3 + [[1, 1]] * 3))
        joint = model.encode(data)
    torch.testing.assert_close(img_only[0], want[0])
    torch.testing.assert_close(also_none[1], want[1])
    torch.testing.assert_close(masked[0][:3], img_only[0][:3])
    torch.testing.assert_close(masked[0][3:], joint[0][3:])
    # joint posterior is sharper than either unimodal one (precisions add)
    assert bool((joint[1] < img_only[1]).all())


def test_mmvae_missing_modality_uses_only_present_experts(rng):
    model = MMVAE(DIMS, LIKS, latent_dim=3, hidden_dim=8)
    data = _batch(rng, 50)
    with torch.no_grad():
        k = model({"caption": data["caption"]}, rng)["expert"]
        assert bool((k == model.modalities.index("caption")).all())
        k = model(data, rng, mask=torch.tensor([[1, 0]] * 50))["expert"]
        assert bool((k == 0).all())
        # generation from one modality uses that expert's mean: deterministic
        a = model.generate(data["caption"], "caption", "image")
        mu_c, _ = model.experts["caption"](data["caption"])
        torch.testing.assert_close(a, torch.sigmoid(model.decoders["image"](mu_c)))
        # single-modality ELBO of the mixture = the ordinary ELBO of that expert
        e = model.elbo({"image": data["image"]}, torch.Generator().manual_seed(2))
        mu, lv = model.experts["image"](data["image"])
        z = reparameterize(mu, lv, torch.Generator().manual_seed(2))
        nll = bernoulli_nll(model.decoders["image"](z), data["image"])
        log_q = Independent(Normal(mu, torch.exp(0.5 * lv)), 1).log_prob(z)
        log_p = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1).log_prob(z)
        torch.testing.assert_close(e, -nll - (log_q - log_p))


def test_mmvae_joint_elbo_by_brute_force(rng):
    model = MMVAE(DIMS, LIKS, latent_dim=2, hidden_dim=8)
    data = _batch(rng, 4)
    with torch.no_grad():
        got = model.elbo(data, torch.Generator().manual_seed(5))
        gen = torch.Generator().manual_seed(5)
        posts = [model.experts[m](data[m]) for m in model.modalities]
        terms = []
        for mu, lv in posts:
            z = mu + torch.exp(0.5 * lv) * torch.randn(mu.shape, generator=gen)
            log_px = -(bernoulli_nll(model.decoders["image"](z), data["image"])
                       + categorical_nll(model.decoders["caption"](z), data["caption"]))
            comps = torch.stack([Independent(Normal(m_, torch.exp(0.5 * l_)), 1).log_prob(z) for m_, l_ in posts])
            log_q = torch.logsumexp(comps, 0) - math.log(2)
            log_p = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1).log_prob(z)
            terms.append(log_px + log_p - log_q)
    torch.testing.assert_close(got, torch.stack(terms).mean(0))


def test_generate_shapes_and_prior_samples():
    model = MVAE(DIMS, LIKS, latent_dim=2, hidden_dim=8)
    g = torch.Generator().manual_seed(0)
    img = model.generate(None, None, "image", n=5, generator=g)
    assert img.shape == (5, 12) and bool(((img >= 0) & (img <= 1)).all())
    cap = model.generate(torch.rand(3, 12), "image", "caption")
    assert cap.shape == (3, 7)
    torch.testing.assert_close(cap.sum(1), torch.ones(3))
    # images can be given as (B, 1, H, W)
    vae = VAE(input_dim=16, latent_dim=2, hidden_dim=4)
    assert vae.encode(torch.rand(2, 1, 4, 4))[0].shape == (2, 2)
    assert vae.sample(3, g).shape == (3, 16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", [MVAE, MMVAE])
def test_cuda_matches_cpu(cls):
    torch.manual_seed(0)
    model = cls(DIMS, LIKS, latent_dim=3, hidden_dim=8)
    data = _batch(torch.Generator().manual_seed(0), 6)
    with torch.no_grad():
        cpu = model.generate(data["caption"], "caption", "image")
        cpu_mu = product_of_experts([data["image"][:, :3]], [data["image"][:, 3:6]])[0]
        gpu_model = model.cuda()
        gpu = gpu_model.generate(data["caption"].cuda(), "caption", "image")
        gpu_loss = gpu_model.loss({k: v.cuda() for k, v in data.items()}, torch.Generator().manual_seed(1))
        gpu_step = gpu_model.training_step({k: v.cuda() for k, v in data.items()}, torch.Generator().manual_seed(1))
        gpu_out = gpu_model({k: v.cuda() for k, v in data.items()}, torch.Generator().manual_seed(1))
        gpu_mu = product_of_experts([data["image"][:, :3].cuda()], [data["image"][:, 3:6].cuda()])[0]
        z, _ = mixture_of_experts([gpu_mu, gpu_mu], [gpu_mu, gpu_mu])
    assert gpu.device.type == "cuda" and z.device.type == "cuda" and torch.isfinite(gpu_loss)
    assert all(gpu_out[k].device.type == "cuda" for k in ("mu", "logvar", "z"))
    assert all(o.device.type == "cuda" for o in gpu_out["output"].values())
    torch.testing.assert_close(gpu_step["loss"], gpu_loss)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(gpu_mu.cpu(), cpu_mu)


# ----------------------------------------------------------------------------- one interface for the three models
def _model_and_input(cls, n=6):
    data = _batch(torch.Generator().manual_seed(1), n)
    torch.manual_seed(0)
    if cls is VAE:
        return VAE(12, 3, 8), data["image"]
    return cls(DIMS, LIKS, latent_dim=3, hidden_dim=8), data


@pytest.mark.parametrize("cls", [VAE, MVAE, MMVAE])
def test_every_encode_returns_the_posterior_parameters(cls):
    # one return type: (mu, logvar), deterministic; (B, d) for the Gaussian posteriors of VAE and
    # MVAE, (M, B, d) for the M components of the MMVAE's mixture (it used to return (z, expert))
    model, x = _model_and_input(cls)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        again = model.encode(x)
        if cls is VAE:
            want = model.encoder(x)
        elif cls is MVAE:
            want = product_of_experts(*zip(*(model.experts[m](x[m]) for m in model.modalities)))
        else:
            want = tuple(torch.stack(t) for t in zip(*(model.experts[m](x[m]) for m in model.modalities)))
    assert mu.shape == logvar.shape == ((6, 3) if cls is not MMVAE else (2, 6, 3))
    torch.testing.assert_close((mu, logvar), want, rtol=0, atol=0)
    assert torch.equal(again[0], mu) and torch.equal(again[1], logvar)


def test_mmvae_encode_leaves_missing_experts_out_as_zeros():
    model, data = _model_and_input(MMVAE)
    cap = model.modalities.index("caption")
    with torch.no_grad():
        mu, logvar = model.encode({"caption": data["caption"], "image": None})
        want = model.experts["caption"](data["caption"])
        assert torch.equal(mu[cap], want[0]) and torch.equal(logvar[cap], want[1])
        assert not mu[1 - cap].any() and not logvar[1 - cap].any()
        mask = torch.tensor([[1, 1]] * 3 + [[0, 1]] * 3)            # image missing for the last three items
        mu, logvar = model.encode(data, mask=mask)
        full = model.encode(data)
    img = model.modalities.index("image")
    assert torch.equal(mu[:, :3], full[0][:, :3]) and torch.equal(mu[cap], full[0][cap])
    assert not mu[img, 3:].any() and not logvar[img, 3:].any()
    with pytest.raises(TypeError, match="generator"):
        model.encode(data, generator=torch.Generator())       # encode draws nothing: see sample_posterior


@pytest.mark.parametrize("cls", [VAE, MVAE])
def test_sample_posterior_is_a_reparameterised_draw_of_encode(cls):
    model, x = _model_and_input(cls)
    with torch.no_grad():
        z = model.sample_posterior(x, torch.Generator().manual_seed(3))
        want = reparameterize(*model.encode(x), torch.Generator().manual_seed(3))
    assert z.shape == (6, 3) and torch.equal(z, want)
    if cls is MVAE:
        mask = torch.tensor([[1, 0]] * 6)
        with torch.no_grad():
            z = model.sample_posterior(x, torch.Generator().manual_seed(3), mask=mask)
            want = reparameterize(*model.encode({"image": x["image"]}), torch.Generator().manual_seed(3))
        assert torch.equal(z, want)


def test_mmvae_sample_posterior_draws_the_mixture_of_encode():
    model, data = _model_and_input(MMVAE, n=400)
    mask = torch.tensor([[1, 1]] * 200 + [[0, 1]] * 200)
    with torch.no_grad():
        z = model.sample_posterior(data, torch.Generator().manual_seed(4), mask=mask)
        mu, logvar = model.encode(data, mask=mask)
        want, expert = mixture_of_experts(mu, logvar, mask, torch.Generator().manual_seed(4))
        out = model(data, torch.Generator().manual_seed(4), mask=mask)
    assert z.shape == (400, 3) and torch.equal(z, want) and torch.equal(out["z"], z)
    assert torch.equal(out["expert"], expert)
    cap = model.modalities.index("caption")
    assert bool((expert[200:] == cap).all()) and 0.35 < float((expert[:200] == cap).float().mean()) < 0.65


@pytest.mark.parametrize("cls", [VAE, MVAE, MMVAE])
def test_calling_the_model_runs_forward(cls):
    # model(x) used to fail for MVAE and MMVAE with torch's "missing the required forward function"
    model, x = _model_and_input(cls)
    with torch.no_grad():
        out = model(x, torch.Generator().manual_seed(2))
        mu, logvar = model.encode(x)
        z = model.sample_posterior(x, torch.Generator().manual_seed(2))
    keys = {"mu", "logvar", "z", "output"} | ({"expert"} if cls is MMVAE else set())
    assert set(out) == keys
    assert torch.equal(out["mu"], mu) and torch.equal(out["logvar"], logvar) and torch.equal(out["z"], z)
    assert out["z"].shape == (6, 3)
    if cls is VAE:
        assert torch.equal(out["output"], model.decoder(z))
    else:
        assert set(out["output"]) == set(model.modalities)
        for m in model.modalities:
            assert torch.equal(out["output"][m], model.decoders[m](z)) and out["output"][m].shape == (6, DIMS[m])
        one = model({"caption": x["caption"]}, torch.Generator().manual_seed(2))
        assert set(one["output"]) == {"caption"}       # the given modalities are reconstructed


def test_mvae_elbo_is_computed_from_forward(rng):
    model, data = _model_and_input(MVAE)
    model.weights = {"image": 0.5, "caption": 2.0}
    with torch.no_grad():
        out = model(data, torch.Generator().manual_seed(9))
        got = model.elbo(data, torch.Generator().manual_seed(9), beta=0.7)
    nll = (0.5 * bernoulli_nll(out["output"]["image"], data["image"])
           + 2.0 * categorical_nll(out["output"]["caption"], data["caption"]))
    torch.testing.assert_close(got, -nll - 0.7 * kl_normal(out["mu"], out["logvar"]))


@pytest.mark.parametrize("cls", [VAE, MVAE, MMVAE])
def test_training_step_is_the_loss_bit_for_bit(cls):
    model, x = _model_and_input(cls)
    batches = [x, (x,), [x]] if cls is VAE else [x, {**x, "label": torch.arange(6)}]
    want = model.loss(x, generator=torch.Generator().manual_seed(5), beta=0.5)
    for batch in batches:
        step = model.training_step(batch, generator=torch.Generator().manual_seed(5), beta=0.5)
        assert set(step) == {"loss"} and step["loss"].shape == () and torch.equal(step["loss"], want)
    step["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_training_step_refuses_other_batches():
    vae, x = _model_and_input(VAE)
    with pytest.raises(ValueError, match=r"batch: expected a tensor \(B, 12\) or a 1-tuple \(x,\), got a tuple of 2"):
        vae.training_step((x, torch.zeros(6)))
    model, data = _model_and_input(MVAE)
    with pytest.raises(TypeError, match=r"batch: expected a dict \{modality: tensor\} over \['image', 'caption'\], "
                                        r"got list"):
        model.training_step([data["image"], data["caption"]])
    with pytest.raises(ValueError, match="unknown modalities"):
        model.training_step({**data, "audio": torch.zeros(6, 3)})
    # a modality that is called "label" is a modality, not the dataset's targets
    labelled = MMVAE({"image": 12, "label": 3}, {"image": "bernoulli", "label": "categorical"},
                     latent_dim=2, hidden_dim=4)
    with pytest.raises(ValueError, match="expected 3 features"):
        labelled.training_step({"image": data["image"], "label": torch.zeros(6, 4)})


@pytest.mark.parametrize("cls", [VAE, MVAE, MMVAE])
def test_a_generic_loop_over_training_step_lowers_the_loss(cls):
    # what mmedu.training.fit does with a model that has training_step: batches from a DataLoader
    from torch.utils.data import DataLoader, TensorDataset

    from mmedu.datasets import MultimodalDataset

    g = torch.Generator().manual_seed(0)
    data = _batch(g, 128)
    torch.manual_seed(0)
    if cls is VAE:
        model, dataset = VAE(12, 2, 16), TensorDataset(data["image"])
    else:
        model, dataset = cls(DIMS, LIKS, latent_dim=3, hidden_dim=16), MultimodalDataset(data, torch.zeros(128))
    loader = DataLoader(dataset, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def epoch_loss():
        with torch.no_grad():
            return sum(float(model.training_step(b, generator=g)["loss"]) for b in loader) / len(loader)

    before = epoch_loss()
    for _ in range(40):
        for batch in loader:
            opt.zero_grad()
            model.training_step(batch, generator=g)["loss"].backward()
            opt.step()
    assert epoch_loss() < before - 1.0


def _public_callables():
    import mmedu.vae as vae

    for name in vae.__all__:
        obj = getattr(vae, name)
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            for klass in obj.__mro__:
                if klass.__module__ != "mmedu.vae":
                    continue
                for attr, fn in vars(klass).items():
                    if inspect.isfunction(fn) and (not attr.startswith("_") or attr == "__init__"):
                        yield f"{name}.{attr}", fn


def test_every_public_parameter_and_return_is_typed():
    untyped = []
    for name, fn in _public_callables():
        sig = inspect.signature(fn)
        untyped += [f"{name}({p})" for p in sig.parameters if p != "self" and
                    sig.parameters[p].annotation is inspect.Parameter.empty]
        if sig.return_annotation is inspect.Signature.empty:
            untyped.append(f"{name} -> ?")
        typing.get_type_hints(fn)           # every annotation names something that exists
    assert not untyped, untyped
    names = {n for n, _ in _public_callables()}
    interface = ("encode", "sample_posterior", "forward", "elbo", "loss", "training_step")   # the module docstring's
    for cls in ("VAE", "MVAE", "MMVAE"):
        assert {f"{cls}.{m}" for m in interface} <= names


# ----------------------------------------------------------------------------- found by mutation testing
# (scripts/mutation_test.py vae --sample 80): behaviour no test above could tell apart from a wrong one
def test_mask_and_value_checks_that_were_never_reached():
    mus, lvs = [torch.zeros(2, 1)] * 2, [torch.zeros(2, 1)] * 2
    with pytest.raises(ValueError, match=r"^mask: expected a 2-D tensor"):
        product_of_experts(mus, lvs, mask=torch.ones(2))
    with pytest.raises(ValueError, match=r"^mask: expected 0/1 or boolean entries"):
        product_of_experts(mus, lvs, mask=torch.tensor([[1, 2], [1, 1]]))
    vae = VAE(input_dim=2, latent_dim=1, hidden_dim=4)
    for bad in ([[0.5, 1.5]], [[-0.5, 0.5]]):  # above 1 only, below 0 only: the models check their inputs
        with pytest.raises(ValueError, match=r"x: expected values in \[0, 1\] for a Bernoulli likelihood"):
            vae.loss(torch.tensor(bad))


def test_vae_decode_is_the_decoder_and_checks_z():
    vae = VAE(input_dim=12, latent_dim=2, hidden_dim=8)
    z = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(vae.decode(z), vae.decoder(z))
    with pytest.raises(ValueError, match=r"z: expected shape \(B, 2\), got \(3, 3\)"):
        vae.decode(torch.zeros(3, 3))


def test_multimodal_defaults_and_argument_checks():
    model = MVAE(DIMS, LIKS, hidden_dim=8)
    assert model.latent_dim == 16 and MMVAE(DIMS, LIKS, hidden_dim=8).latent_dim == 16
    with pytest.raises(TypeError, match="input_dims: expected a mapping of at least two modality names"):
        MVAE([12, 7], LIKS)
    with pytest.raises(ValueError, match="to_modality"):
        model.decode(torch.zeros(2, 16), "audio")
    with pytest.raises(ValueError, match=r"z: expected shape \(B, 16\), got \(2, 3\)"):
        model.decode(torch.zeros(2, 3), "image")
    with pytest.raises(TypeError, match="from_modality: expected a modality name, a list of names or None, got 5"):
        model.generate(torch.zeros(2, 12), 5, "caption")


def test_mvae_loss_defaults_to_beta_one_and_counts_a_single_modality_once():
    model = MVAE(DIMS, LIKS, latent_dim=2, hidden_dim=8)
    x = _batch(torch.Generator().manual_seed(1), n=6)

    def g():
        return torch.Generator().manual_seed(2)

    assert torch.equal(model.loss(x, g()), model.loss(x, g(), beta=1.0))
    assert torch.equal(model.elbo(x, g()), model.elbo(x, g(), beta=1.0))
    # one modality: the joint ELBO is the unimodal one, added once
    torch.testing.assert_close(model.loss({"image": x["image"]}, g()), -model.elbo({"image": x["image"]}, g()).mean())


def test_mmvae_generate_from_two_modalities_uses_one_expert_mean_per_row():
    model = MMVAE(DIMS, LIKS, latent_dim=2, hidden_dim=8)
    x = _batch(torch.Generator().manual_seed(3), n=40)
    out = model.generate(x, ["image", "caption"], "image", generator=torch.Generator().manual_seed(4))
    per_expert = [model.decode(model.experts[m](x[m])[0], "image") for m in ("image", "caption")]
    from_image = (out - per_expert[0]).abs().amax(dim=1) < 1e-6
    from_caption = (out - per_expert[1]).abs().amax(dim=1) < 1e-6
    assert bool((from_image | from_caption).all())
    assert bool(from_image.any()) and bool(from_caption.any())  # the expert is chosen at random per row
