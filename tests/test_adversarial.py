"""Tests of mmedu.adversarial: GAN losses (hand-computed values, torch's BCE), the optimal
discriminator (closed form on a 1-D case, and a trained D approaching it), gradient reversal
(autograd), the cross-modal GAN's alternating updates, ACMR on planted structure, and errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmedu.adversarial import (
    ACMR,
    CrossModalGAN,
    Discriminator,
    Generator,
    GradientReversal,
    discriminator_loss,
    fit_acmr,
    fit_gan,
    generator_loss_minimax,
    generator_loss_nonsaturating,
    gradient_reversal,
    optimal_discriminator,
)
from mmedu.losses import _triplet_mean, vse_hinge
from mmedu.metrics import cosine_similarity, mean_average_precision, recall_at_k

LN3 = math.log(3.0)  # sigmoid(ln 3) = 3/4


# --------------------------------------------------------------------------- synthetic data


def planted(n=600, n_classes=5, d_latent=6, image_dim=20, text_dim=15, noise=0.3, seed=0):
    """Paired views sharing a latent code: z = class centre + instance detail; each view is a
    different random linear map of z plus its own noise (the planted shared structure)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % n_classes
    centres = 2.0 * torch.randn(n_classes, d_latent, generator=g)
    z = centres[labels] + 0.7 * torch.randn(n, d_latent, generator=g)
    a = torch.randn(d_latent, image_dim, generator=g) / math.sqrt(d_latent)
    b = torch.randn(d_latent, text_dim, generator=g) / math.sqrt(d_latent)
    x_img = z @ a + noise * torch.randn(n, image_dim, generator=g)
    x_text = z @ b + noise * torch.randn(n, text_dim, generator=g)
    return x_img, x_text, labels


# --------------------------------------------------------------------------- losses


def test_losses_match_hand_computed_values_and_signs():
    real, fake = torch.tensor([LN3]), torch.tensor([0.0])
    # D's loss: -log(3/4) - log(1 - 1/2)
    assert discriminator_loss(real, fake).item() == pytest.approx(-math.log(0.75) - math.log(0.5), rel=1e-6)
    # G's minimax loss is log(1 - D(G(z))) <= 0: with D = 3/4 it is log(1/4)
    assert generator_loss_minimax(torch.tensor([LN3])).item() == pytest.approx(math.log(0.25), rel=1e-6)
    assert generator_loss_minimax(torch.tensor([LN3])).item() < 0
    # non-saturating: -log D(G(z)) >= 0: with D = 3/4 it is -log(3/4)
    assert generator_loss_nonsaturating(torch.tensor([LN3])).item() == pytest.approx(-math.log(0.75), rel=1e-6)
    assert generator_loss_nonsaturating(torch.tensor([LN3])).item() > 0
    # means over the batch, (B, 1) accepted
    two = torch.tensor([[0.0], [LN3]])
    assert generator_loss_nonsaturating(two).item() == pytest.approx(-(math.log(0.5) + math.log(0.75)) / 2, rel=1e-6)


def test_losses_match_torch_bce_with_logits(rng):
    r, f = torch.randn(50, generator=rng) * 3, torch.randn(70, generator=rng) * 3
    want_d = (F.binary_cross_entropy_with_logits(r, torch.ones(50))
              + F.binary_cross_entropy_with_logits(f, torch.zeros(70)))
    torch.testing.assert_close(discriminator_loss(r, f), want_d)
    torch.testing.assert_close(generator_loss_nonsaturating(f), F.binary_cross_entropy_with_logits(f, torch.ones(70)))
    torch.testing.assert_close(generator_loss_minimax(f), -F.binary_cross_entropy_with_logits(f, torch.zeros(70)))


def test_losses_are_finite_and_exact_for_extreme_logits():
    # -log sigmoid(-200) = 200 + log(1 + e^-200) = 200 to float precision; a log(sigmoid(.))
    # implementation gives inf here (sigmoid(-200) underflows to 0 in float32)
    big = torch.tensor([200.0, -200.0])
    for value in (discriminator_loss(big, big), generator_loss_minimax(big), generator_loss_nonsaturating(big)):
        assert torch.isfinite(value)
    real, fake = torch.tensor([-200.0]), torch.tensor([200.0])  # D as wrong as it can be
    assert discriminator_loss(real, fake).item() == pytest.approx(400.0, rel=1e-6)
    assert generator_loss_nonsaturating(real).item() == pytest.approx(200.0, rel=1e-6)
    assert generator_loss_minimax(fake).item() == pytest.approx(-200.0, rel=1e-6)
    # and the gradients are finite and exact: d/da -log sigmoid(a) = -(1 - sigmoid(a)) = -1 at a = -200
    a = torch.tensor([-200.0], requires_grad=True)
    (grad,) = torch.autograd.grad(generator_loss_nonsaturating(a), a)
    assert grad.item() == pytest.approx(-1.0)


def test_minimax_saturates_where_nonsaturating_does_not():
    # a confidently rejected fake (logit -10): minimax gradient ~ -sigmoid(-10), non-saturating ~ -1
    a = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(generator_loss_minimax(a), a)
    (g_ns,) = torch.autograd.grad(generator_loss_nonsaturating(a), a)
    assert g_mm.item() == pytest.approx(-torch.sigmoid(torch.tensor(-10.0)).item(), rel=1e-5)
    assert g_ns.item() == pytest.approx(-(1 - torch.sigmoid(torch.tensor(-10.0)).item()), rel=1e-5)
    assert abs(g_ns.item()) > 1000 * abs(g_mm.item())


# --------------------------------------------------------------------------- optimal discriminator


def normal_pdf(x, mu, sd=1.0):
    return torch.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def test_optimal_discriminator_closed_form_on_two_gaussians():
    # p_data = N(0, 1), p_g = N(1, 1): log(p_data / p_g) = 1/2 - x, so D* = sigmoid(1/2 - x)
    x = torch.linspace(-4, 5, 201, dtype=torch.float64)
    d_star = optimal_discriminator(normal_pdf(x, 0.0), normal_pdf(x, 1.0))
    torch.testing.assert_close(d_star, torch.sigmoid(0.5 - x))
    # equal densities: D* = 1/2 everywhere
    torch.testing.assert_close(optimal_discriminator(normal_pdf(x, 0.0), normal_pdf(x, 0.0)),
                               torch.full_like(x, 0.5))


def test_value_at_optimal_d_is_minus_log4_plus_two_jsd():
    x = torch.linspace(-12, 13, 200001, dtype=torch.float64)
    dx = x[1] - x[0]
    p, q = normal_pdf(x, 0.0), normal_pdf(x, 1.0)
    d = optimal_discriminator(p, q)
    value = ((p * torch.log(d) + q * torch.log1p(-d)) * dx).sum()
    m = (p + q) / 2
    jsd = 0.5 * ((p * torch.log(p / m)) * dx).sum() + 0.5 * ((q * torch.log(q / m)) * dx).sum()
    assert value.item() == pytest.approx(-math.log(4) + 2 * jsd.item(), abs=1e-7)
    # any other D does worse: shift D* a little
    worse = optimal_discriminator(p, q).clamp(1e-12, 1 - 1e-12) * 0.9
    value_worse = ((p * torch.log(worse) + q * torch.log1p(-worse)) * dx).sum()
    assert value_worse < value


def test_trained_discriminator_approaches_the_optimum():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    d = Discriminator(1, hidden_dims=())  # a linear logit suffices for equal-variance Gaussians
    opt = torch.optim.Adam(d.parameters(), lr=0.05)
    for _ in range(300):
        real = torch.randn(512, 1, generator=g)
        fake = 1.0 + torch.randn(512, 1, generator=g)
        loss = discriminator_loss(d(real), d(fake))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.linspace(-2, 3, 11)
    with torch.no_grad():
        got = torch.sigmoid(d(x[:, None]))
    want = optimal_discriminator(normal_pdf(x, 0.0), normal_pdf(x, 1.0))
    assert (got - want).abs().max() < 0.05


def test_optimal_discriminator_errors():
    with pytest.raises(ValueError, match="same shape"):
        optimal_discriminator(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match=">= 0"):
        optimal_discriminator(torch.tensor([-1.0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="undefined"):
        optimal_discriminator(torch.tensor([0.0]), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="finite"):
        optimal_discriminator(torch.tensor([float("nan")]), torch.tensor([1.0]))


def test_loss_input_errors():
    with pytest.raises(ValueError, match=r"\(B,\) or \(B, 1\)"):
        discriminator_loss(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        generator_loss_nonsaturating(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="empty"):
        generator_loss_minimax(torch.zeros(0))
    with pytest.raises(TypeError, match="torch.Tensor"):
        discriminator_loss("logits", torch.zeros(2))


# --------------------------------------------------------------------------- gradient reversal


@pytest.mark.parametrize("lam", [1.0, 0.3, 2.5, 0.0])
def test_gradient_reversal_forward_identity_backward_reversed(lam, rng):
    x = torch.randn(4, 3, generator=rng, requires_grad=True)
    w = torch.randn(4, 3, generator=rng)
    for layer in (lambda t: gradient_reversal(t, lam), GradientReversal(lam)):
        y = layer(x)
        torch.testing.assert_close(y, x, rtol=0, atol=0)
        (grad,) = torch.autograd.grad((y * w).sum(), x)
        torch.testing.assert_close(grad, -lam * w)  # the plain gradient is w
    if lam == 0.0:
        assert bool((grad == 0).all())


def test_gradient_reversal_inside_a_network_flips_only_the_layers_below(rng):
    lin1, lin2 = torch.nn.Linear(3, 4), torch.nn.Linear(4, 1)
    x = torch.randn(5, 3, generator=rng)
    plain = torch.autograd.grad(lin2(lin1(x)).sum(), [lin1.weight, lin2.weight])
    reversed_ = torch.autograd.grad(lin2(gradient_reversal(lin1(x), 0.5)).sum(), [lin1.weight, lin2.weight])
    torch.testing.assert_close(reversed_[0], -0.5 * plain[0])  # below the reversal: flipped and scaled
    torch.testing.assert_close(reversed_[1], plain[1])  # above it: unchanged


def test_gradient_reversal_errors():
    with pytest.raises(ValueError, match=r"lambda_: expected a real number in \[0, inf\), got -1.0"):
        GradientReversal(-1.0)
    with pytest.raises(TypeError, match="lambda_: expected a real number .* got bool True"):
        GradientReversal(True)
    with pytest.raises(ValueError, match="finite"):
        gradient_reversal(torch.zeros(2), float("nan"))
    with pytest.raises(TypeError, match="torch.Tensor"):
        gradient_reversal([1.0, 2.0])
    with pytest.raises(TypeError, match="floating"):
        gradient_reversal(torch.zeros(2, dtype=torch.int64))


# --------------------------------------------------------------------------- G, D and the cross-modal GAN


def test_generator_and_discriminator_shapes():
    torch.manual_seed(0)
    assert Generator(5, 7, hidden_dims=(8,))(torch.zeros(3, 5)).shape == (3, 7)
    assert Discriminator(12, hidden_dims=())(torch.zeros(3, 12)).shape == (3,)
    gan = CrossModalGAN(5, 7, hidden_dims_g=(8,), hidden_dims_d=(8,))
    assert gan(torch.zeros(3, 5)).shape == (3, 7)
    assert gan.discriminate(torch.zeros(3, 5), torch.zeros(3, 7)).shape == (3,)
    # the source's wiring: D sees the joint vector of size image_dim + text_dim
    assert gan.discriminator.input_dim == 12


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("paired", [None, "l2", "contrastive"])
def test_generator_step_leaves_d_unchanged_and_vice_versa(paired):
    torch.manual_seed(0)
    x_img, x_text, _ = planted(n=64)
    gan = CrossModalGAN(20, 15, hidden_dims_g=(16,), hidden_dims_d=(16,), paired=paired)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=1e-2)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=1e-2)
    g0, d0 = _snapshot(gan.generator), _snapshot(gan.discriminator)
    out = gan.g_step(x_img, x_text, opt_g)
    assert set(out) == {"g_loss", "paired_loss"}
    assert not _same(g0, _snapshot(gan.generator))  # G moved
    assert _same(d0, _snapshot(gan.discriminator))  # D did not
    assert all(p.grad is None for p in gan.discriminator.parameters())  # not even D's gradients
    g1 = _snapshot(gan.generator)
    out = gan.d_step(x_img, x_text, opt_d)
    assert set(out) == {"d_loss", "d_acc"} and 0.0 <= out["d_acc"] <= 1.0
    assert not _same(d0, _snapshot(gan.discriminator))  # D moved
    assert _same(g1, _snapshot(gan.generator))  # G did not


def test_fixed_seed_short_run_lowers_the_paired_loss():
    x_img, x_text, _ = planted(n=512)
    torch.manual_seed(0)
    gan = CrossModalGAN(20, 15, hidden_dims_g=(32,), hidden_dims_d=(32,), paired="l2")
    with torch.no_grad():
        before = gan.paired_loss(x_img, x_text).item()
    history = fit_gan(gan, x_img, x_text, epochs=15, batch_size=64, lr_g=3e-3, lr_d=1e-3, seed=0)
    with torch.no_grad():
        after = gan.paired_loss(x_img, x_text).item()
    assert after < 0.5 * before
    assert set(history) == {"train_d_loss", "train_d_acc", "train_g_loss", "train_paired_loss"}
    assert len(history) == 15 and all(len(v) == 15 for _, v in history.items())


def test_fit_gan_is_reproducible_and_val_fn_is_recorded():
    x_img, x_text, _ = planted(n=128)

    def run():
        torch.manual_seed(3)
        gan = CrossModalGAN(20, 15, hidden_dims_g=(8,), hidden_dims_d=(8,), paired="contrastive")
        return fit_gan(gan, x_img, x_text, epochs=2, batch_size=32, seed=5,
                       val_fn=lambda m: {"norm": m(x_img).norm().item()})

    a, b = run(), run()
    assert a.as_dict() == b.as_dict() and len(a["val_norm"]) == 2


def _old_fit_gan(model, x_img, x_text, epochs, batch_size, lr, seed, d_steps=1):
    # the hand-written loop fit_gan was before it called the one training loop (reference)
    g = torch.Generator().manual_seed(seed)
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    keys = ("d_loss", "d_acc", "g_loss", "paired_loss")
    history = {k: [] for k in keys}
    model.train()
    n = x_img.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        sums = dict.fromkeys(keys, 0.0)
        for b in range(n // batch_size):
            idx = order[b * batch_size:(b + 1) * batch_size]
            for _ in range(d_steps):
                out = model.d_step(x_img[idx], x_text[idx], opt_d)
            out.update(model.g_step(x_img[idx], x_text[idx], opt_g))
            for k in sums:
                sums[k] += out[k]
        for k in sums:
            history[k].append(sums[k] / (n // batch_size))
    return history


def test_fit_gan_is_the_hand_written_gan_loop_bit_for_bit():
    x_img, x_text, _ = planted(n=200)  # 200 = 6 batches of 32 and 8 dropped rows

    def gan():
        torch.manual_seed(1)
        return CrossModalGAN(20, 15, hidden_dims_g=(8,), hidden_dims_d=(8,), paired="l2")

    old_model, new_model = gan(), gan()
    old = _old_fit_gan(old_model, x_img, x_text, epochs=3, batch_size=32, lr=2e-3, seed=4, d_steps=2)
    new = fit_gan(new_model, x_img, x_text, epochs=3, batch_size=32, lr_g=2e-3, lr_d=2e-3, seed=4, d_steps=2)
    assert {f"train_{k}": v for k, v in old.items()} == new.as_dict()
    assert all(torch.equal(a, b) for a, b in zip(old_model.state_dict().values(), new_model.state_dict().values()))
    assert not new_model.training


def test_fit_gan_select_keeps_the_best_epoch():
    x_img, x_text, _ = planted(n=128)
    torch.manual_seed(3)
    gan = CrossModalGAN(20, 15, hidden_dims_g=(8,), hidden_dims_d=(8,), paired="l2")
    snapshots = []

    def val_fn(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"score": [0.1, 0.7, 0.3, 0.7][len(snapshots) - 1]}  # best first at epoch 2

    h = fit_gan(gan, x_img, x_text, epochs=4, batch_size=32, seed=0, val_fn=val_fn, select="val_score")
    assert h.best_epoch == 2
    assert all(torch.equal(v, snapshots[1][k]) for k, v in gan.state_dict().items())
    assert not all(torch.equal(v, snapshots[3][k]) for k, v in gan.state_dict().items())


def test_fit_acmr_is_the_hand_written_loop_bit_for_bit():
    x_img, x_text, labels = planted(n=150)

    def model():
        torch.manual_seed(2)
        return ACMR(20, 15, embed_dim=4, n_classes=5, hidden_dims=(8,))

    old_model, new_model = model(), model()
    g = torch.Generator().manual_seed(7)
    opt = torch.optim.Adam(old_model.parameters(), lr=1e-3)
    old = {k: [] for k in ("label", "triplet", "modality", "modality_acc")}
    old_model.train()
    for _ in range(2):
        order = torch.randperm(150, generator=g)
        sums = dict.fromkeys(old, 0.0)
        for b in range(150 // 32):
            idx = order[b * 32:(b + 1) * 32]
            parts = old_model.losses(x_img[idx], x_text[idx], labels[idx], triplet="label")
            total = 1.0 * parts["label"] + 0.5 * parts["triplet"] + 2.0 * parts["modality"]
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            for k in sums:
                sums[k] += float(parts[k].detach())
        for k in sums:
            old[k].append(sums[k] / (150 // 32))
    new = fit_acmr(new_model, x_img, x_text, labels, epochs=2, batch_size=32, seed=7, triplet="label",
                   triplet_weight=0.5, adversarial_weight=2.0)
    assert all(new[f"train_{k}"] == v for k, v in old.items())
    assert all(torch.equal(a, b) for a, b in zip(old_model.state_dict().values(), new_model.state_dict().values()))


def test_training_step_of_the_gan_checks_its_optimizers():
    x_img, x_text, _ = planted(n=16)
    gan = CrossModalGAN(20, 15, hidden_dims_g=(8,), hidden_dims_d=(8,))
    opt = torch.optim.Adam(gan.parameters())
    with pytest.raises(ValueError, match=r"optimizers: expected a dict with keys \['discriminator', 'generator'\], got \['g'\]"):
        gan.training_step((x_img, x_text), {"g": opt})


def test_plot_learning_curves_draws_a_gan_history():
    from mmedu.plot import learning_curves
    x_img, x_text, _ = planted(n=64)
    torch.manual_seed(0)
    h = fit_gan(CrossModalGAN(20, 15, hidden_dims_g=(8,), hidden_dims_d=(8,)), x_img, x_text, epochs=2, batch_size=32)
    fig = learning_curves(h)
    assert len(fig.axes) >= 2


def test_contrastive_paired_loss_is_info_nce():
    torch.manual_seed(0)
    gan = CrossModalGAN(4, 3, hidden_dims_g=(), paired="contrastive", temperature=0.5)
    x, t = torch.randn(6, 4), torch.randn(6, 3)
    s = F.normalize(gan(x), dim=1) @ F.normalize(t, dim=1).T / 0.5
    idx = torch.arange(6)
    want = (F.cross_entropy(s, idx) + F.cross_entropy(s.T, idx)) / 2
    torch.testing.assert_close(gan.paired_loss(x, t), want)


def test_cross_modal_gan_errors():
    gan = CrossModalGAN(5, 7, hidden_dims_g=(), hidden_dims_d=())
    with pytest.raises(ValueError, match=r"expected 5 features per row"):
        gan(torch.zeros(3, 6))
    with pytest.raises(ValueError, match=r"expected 7 features per row"):
        gan.discriminate(torch.zeros(3, 5), torch.zeros(3, 8))
    with pytest.raises(ValueError, match="same batch size"):
        gan.paired_loss(torch.zeros(3, 5), torch.zeros(4, 7))
    with pytest.raises(ValueError, match="finite"):
        gan(torch.full((2, 5), float("nan")))
    with pytest.raises(ValueError, match="2-D"):
        gan(torch.zeros(5))
    with pytest.raises(ValueError, match="paired"):
        CrossModalGAN(5, 7, paired="cosine")
    with pytest.raises(ValueError, match="g_loss"):
        CrossModalGAN(5, 7, g_loss="wasserstein")
    with pytest.raises(ValueError, match="temperature"):
        CrossModalGAN(5, 7, temperature=0.0)
    with pytest.raises(TypeError, match="CrossModalGAN"):
        fit_gan(torch.nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="batch_size"):
        fit_gan(gan, torch.zeros(3, 5), torch.zeros(3, 7), batch_size=4)
    with pytest.raises(TypeError, match="hidden_dims"):
        Generator(3, 4, hidden_dims=16)


# --------------------------------------------------------------------------- triplet loss and ACMR


def test_acmr_triplet_loss_against_a_brute_force_loop(rng):
    # the triplet loss ACMR trains with (mmedu.losses._triplet_mean), against plain loops
    a, o = torch.randn(6, 4, generator=rng), torch.randn(6, 4, generator=rng)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    s = F.normalize(a, dim=1) @ F.normalize(o, dim=1).T
    m = 0.3

    def pair_mode(sim):
        terms = [max(0.0, m - sim[i][i] + sim[i][k]) for i in range(6) for k in range(6) if k != i]
        return sum(terms) / len(terms)

    def label_mode(sim):
        terms = []
        for i in range(6):
            hardest = max(sim[i][k] for k in range(6) if labels[k] != labels[i])
            terms += [max(0.0, m - sim[i][j] + hardest) for j in range(6) if labels[j] == labels[i]]
        return sum(terms) / len(terms)

    sl = s.tolist()
    st = s.T.tolist()
    assert _triplet_mean(a, o, m).item() == pytest.approx((pair_mode(sl) + pair_mode(st)) / 2, rel=1e-5)
    assert _triplet_mean(a, o, m, labels).item() == pytest.approx((label_mode(sl) + label_mode(st)) / 2, rel=1e-5)
    # perfectly aligned, well separated codes give zero loss
    e = torch.eye(6)
    assert _triplet_mean(e, e, 0.5).item() == 0.0


def test_acmr_triplet_loss_refuses_nan_in_both_modes():
    a, o = torch.randn(4, 3), torch.randn(4, 3)
    bad = a.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="a: expected finite values"):
        _triplet_mean(bad, o, 0.2)  # labels=None used to return NaN
    with pytest.raises(ValueError, match="b: expected finite values"):
        _triplet_mean(a, bad, 0.2, torch.tensor([0, 0, 1, 1]))


def test_acmr_triplet_loss_of_a_one_class_batch_is_zero_with_a_zero_gradient():
    a = torch.randn(4, 3, requires_grad=True)
    o = torch.randn(4, 3)
    loss = _triplet_mean(a, o, 0.2, torch.tensor([2, 2, 2, 2]))
    assert loss.item() == 0.0
    (grad,) = torch.autograd.grad(loss, a)
    assert torch.equal(grad, torch.zeros_like(a))


def test_scalar_options_accept_numpy_scalars():
    a, o = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.equal(_triplet_mean(a, o, np.float32(0.25)), _triplet_mean(a, o, 0.25))
    assert GradientReversal(np.float32(0.5)).lambda_ == 0.5
    assert GradientReversal(np.int64(2)).lambda_ == 2.0
    assert CrossModalGAN(3, 2, temperature=np.float32(0.5)).temperature == 0.5
    with pytest.raises(TypeError, match=r"margin: expected a real number in \[0, inf\), got numpy.bool"):
        _triplet_mean(a, o, np.bool_(True))


def test_acmr_shapes_and_losses():
    torch.manual_seed(0)
    model = ACMR(20, 15, embed_dim=8, n_classes=5, hidden_dims=(16,))
    x_img, x_text, labels = planted(n=32)
    assert model.encode_image(x_img).shape == (32, 8)
    assert model.encode_text(x_text).shape == (32, 8)
    parts = model.losses(x_img, x_text, labels)
    assert set(parts) == {"label", "triplet", "modality", "modality_acc"}
    assert all(torch.isfinite(v) for v in parts.values())


@pytest.mark.parametrize("triplet", ["pair", "label"])
def test_acmr_triplet_loss_is_vse_hinge_averaged_over_the_triplets(triplet):
    # the triplet loss now lives in mmedu.losses; ACMR averages each direction over its
    # triplets (tests/test_losses.py: to the bit of the former adversarial.triplet_loss)
    torch.manual_seed(0)
    model = ACMR(20, 15, embed_dim=8, n_classes=5, hidden_dims=(16,))
    x_img, x_text, labels = planted(n=32)
    zi, zt = model(x_img, x_text)
    got = model.losses(x_img, x_text, labels, triplet=triplet, margin=0.3)["triplet"]
    if triplet == "pair":
        want = vse_hinge(zi, zt, 0.3, hardest=False) / (2 * 31)
    else:
        want = vse_hinge(zi, zt, 0.3, labels=labels) / 2
    torch.testing.assert_close(got, want)


def test_acmr_label_loss_is_cross_entropy_over_both_modalities():
    # the label loss is one classifier's cross-entropy on the codes of both modalities: with as
    # many image as text codes, that is F.cross_entropy over the 2B codes at once
    torch.manual_seed(0)
    model = ACMR(20, 15, embed_dim=8, n_classes=5, hidden_dims=(16,))
    x_img, x_text, labels = planted(n=32)
    codes = torch.cat([model.encode_image(x_img), model.encode_text(x_text)])
    want = F.cross_entropy(model.label_classifier(codes), torch.cat([labels, labels]))
    torch.testing.assert_close(model.losses(x_img, x_text, labels)["label"], want)
    # an untrained classifier on 5 classes: close to the uniform guess's log(5)
    assert abs(want.item() - math.log(5)) < 1.0


def test_acmr_modality_gradient_is_reversed_for_the_projectors():
    torch.manual_seed(0)
    x_img, x_text, labels = planted(n=32)
    grads = {}
    for lam in (1.0, -1.0):
        model = ACMR(20, 15, embed_dim=8, n_classes=5, hidden_dims=(), lambda_=abs(lam))
        torch.manual_seed(1)
        model.load_state_dict(ACMR(20, 15, embed_dim=8, n_classes=5, hidden_dims=()).state_dict())
        if lam < 0:  # no reversal: compare with the plain gradient
            model.reversal.lambda_ = 0.0
            zi, zt = model(x_img, x_text)
            codes = F.normalize(torch.cat([zi, zt]), dim=1)
            logits = model.modality_classifier(codes)[:, 0]
            loss = F.binary_cross_entropy_with_logits(logits, torch.cat([torch.ones(32), torch.zeros(32)]))
        else:
            loss = model.losses(x_img, x_text, labels)["modality"]
        w = model.image_projector[0].weight
        grads[lam] = torch.autograd.grad(loss, [w, model.modality_classifier[0].weight])
    torch.testing.assert_close(grads[1.0][0], -grads[-1.0][0])  # projector: reversed
    torch.testing.assert_close(grads[1.0][1], grads[-1.0][1])  # modality classifier: not reversed


def test_fit_acmr_recovers_planted_structure():
    # 600 pairs to train on, 300 held-out pairs of the same planted model
    full_img, full_txt, full_labels = planted(n=900, seed=0)
    tr, te = slice(0, 600), slice(600, 900)
    torch.manual_seed(0)
    model = ACMR(20, 15, embed_dim=8, n_classes=5, hidden_dims=(32,), lambda_=0.1)
    history = fit_acmr(model, full_img[tr], full_txt[tr], full_labels[tr], epochs=15, batch_size=50, seed=0)
    assert set(history) == {"train_loss", "train_label", "train_triplet", "train_modality", "train_modality_acc"}
    assert history["train_label"][-1] < history["train_label"][0]
    with torch.no_grad():
        sim = cosine_similarity(model.encode_image(full_img[te]), model.encode_text(full_txt[te]))
    y = full_labels[te]
    m_ap = mean_average_precision(sim, y, y)
    chance = 1 / 5  # about 1/n_classes for random scores
    assert m_ap > 0.8, m_ap
    assert m_ap > 3 * chance
    # and instance-level retrieval is far above chance (10 / 300)
    assert recall_at_k(sim, 10)[10] > 0.2


def test_fit_acmr_label_triplets_survive_one_class_batches():
    # 2 items of class 1 among 14 of class 0: with batches of 2, several batches hold one class
    # (no negative for any anchor). Training goes on; those batches add 0 to the triplet loss.
    x_img, x_text, _ = planted(n=16)
    labels = torch.tensor([0] * 14 + [1] * 2)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    assert any(bool((labels[order[b:b + 2]] == labels[order[b]]).all()) for b in range(0, 16, 2))
    torch.manual_seed(0)
    model = ACMR(20, 15, embed_dim=4, n_classes=2, hidden_dims=())
    history = fit_acmr(model, x_img, x_text, labels, epochs=2, batch_size=2, triplet="label", seed=0)
    assert len(history["train_triplet"]) == 2 and all(math.isfinite(v) for v in history["train_triplet"])


def test_fit_acmr_on_shuffled_labels_learns_no_classes():
    # the control: the same call on labels that carry no information gives near-chance mAP
    full_img, full_txt, full_labels = planted(n=900, seed=0)
    perm = torch.randperm(900, generator=torch.Generator().manual_seed(1))
    shuffled_txt = full_txt[perm]  # break the pairing as well
    torch.manual_seed(0)
    model = ACMR(20, 15, embed_dim=8, n_classes=5, hidden_dims=(32,), lambda_=0.1)
    fit_acmr(model, full_img[:600], shuffled_txt[:600], full_labels[perm][:600], epochs=5, batch_size=50, seed=0)
    with torch.no_grad():
        sim = cosine_similarity(model.encode_image(full_img[600:]), model.encode_text(full_txt[600:]))
    assert recall_at_k(sim, 10)[10] < 0.15


def test_acmr_errors():
    model = ACMR(20, 15, embed_dim=8, n_classes=5, hidden_dims=())
    x_img, x_text, labels = planted(n=40)
    with pytest.raises(ValueError, match="expected 20 features per row"):
        fit_acmr(model, x_text, x_text, labels)
    with pytest.raises(ValueError, match="expected 15 features per row"):
        model.encode_text(x_img)
    with pytest.raises(ValueError, match=r"integers in \[0, 4\]"):
        fit_acmr(model, x_img, x_text, labels + 1)
    with pytest.raises(ValueError, match=r"integers in \[0, 4\]"):
        fit_acmr(model, x_img, x_text, labels - 1)
    with pytest.raises(TypeError, match="integer class labels"):
        fit_acmr(model, x_img, x_text, labels.float())
    with pytest.raises(ValueError, match="expected 40 labels"):
        fit_acmr(model, x_img, x_text, labels[:30])
    with pytest.raises(ValueError, match="same batch size"):
        fit_acmr(model, x_img, x_text[:30], labels)
    bad = x_img.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        fit_acmr(model, bad, x_text, labels)
    with pytest.raises(ValueError, match="triplet"):
        fit_acmr(model, x_img, x_text, labels, batch_size=20, triplet="hard")
    with pytest.raises(ValueError, match="n_classes"):
        ACMR(20, 15, 8, n_classes=1)
    with pytest.raises(TypeError, match="ACMR"):
        fit_acmr(torch.nn.Linear(2, 2), x_img, x_text, labels)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        _triplet_mean(torch.randn(1, 2), torch.randn(1, 2), 0.2, torch.tensor([1]))


# --------------------------------------------------------------------------- CUDA


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda():
    dev = torch.device("cuda")
    x_img, x_text, labels = planted(n=128)
    torch.manual_seed(0)
    gan = CrossModalGAN(20, 15, hidden_dims_g=(16,), hidden_dims_d=(16,), paired="l2").to(dev)
    h = fit_gan(gan, x_img.to(dev), x_text.to(dev), epochs=2, batch_size=32, seed=0)
    assert all(math.isfinite(v) for v in h["train_paired_loss"])
    assert gan(x_img.to(dev)).device.type == "cuda"
    model = ACMR(20, 15, embed_dim=8, n_classes=5, hidden_dims=(16,)).to(dev)
    fit_acmr(model, x_img.to(dev), x_text.to(dev), labels.to(dev), epochs=2, batch_size=32, seed=0)
    assert model.encode_image(x_img.to(dev)).device.type == "cuda"
    x = torch.randn(4, 3, device=dev, requires_grad=True)
    (grad,) = torch.autograd.grad(gradient_reversal(x, 0.5).sum(), x)
    torch.testing.assert_close(grad, torch.full_like(x, -0.5))
