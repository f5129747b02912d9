"""Tests for mmedu.encoders: shapes, masked pooling against a by-hand loop, gradients, bad input."""

import numpy as np
import pytest
import torch
from torch import nn

from mmedu.encoders import AudioEncoder, BagOfWordsEncoder, ImageEncoder, TextEncoder


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _all_params_get_grad(module: nn.Module, out: torch.Tensor) -> None:
    module.zero_grad()
    out.square().sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name} got an all-zero gradient"


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("dim", [1, 16, 64])
def test_image_encoder_shape(dim):
    torch.manual_seed(0)
    enc = ImageEncoder(output_dim=dim)
    y = enc(torch.rand(5, 1, 28, 28, generator=_gen()))
    assert y.shape == (5, dim) and enc.output_dim == dim
    assert y.dtype == torch.float32


@pytest.mark.parametrize("size", [28, 32, 9])
def test_image_encoder_other_sizes(size):
    enc = ImageEncoder(output_dim=8, image_size=size)
    assert enc(torch.rand(2, 1, size, size, generator=_gen())).shape == (2, 8)


@pytest.mark.parametrize("frames", [63, 20, 5, 1])
def test_audio_encoder_any_length(frames):
    enc = AudioEncoder(output_dim=24).eval()
    assert enc(torch.randn(3, 40, frames, generator=_gen())).shape == (3, 24)


def test_text_and_bow_shapes():
    ids = torch.randint(0, 30, (4, 9), generator=_gen())
    assert TextEncoder(30, output_dim=12)(ids).shape == (4, 12)
    for pooling in ("max", "meanmax"):
        assert TextEncoder(30, output_dim=12, pooling=pooling)(ids).shape == (4, 12)
    bow = torch.rand(4, 30, generator=_gen())
    assert BagOfWordsEncoder(30, output_dim=7)(bow).shape == (4, 7)
    assert BagOfWordsEncoder(30, output_dim=7, hidden_dim=16)(bow).shape == (4, 7)


def test_numpy_input_is_accepted():
    enc = ImageEncoder(output_dim=4)
    x = np.random.default_rng(0).random((2, 1, 28, 28))  # float64 numpy
    torch.testing.assert_close(enc(x), enc(torch.as_tensor(x, dtype=torch.float32)))


# ---------------------------------------------------------------- the math


def test_image_encoder_matches_functional_layers():
    torch.manual_seed(0)
    enc = ImageEncoder(output_dim=6)
    x = torch.rand(3, 1, 28, 28, generator=_gen())
    c1, c2, lin = enc.features[0], enc.features[2], enc.project[0]
    h = torch.relu(torch.nn.functional.conv2d(x, c1.weight, c1.bias, stride=2, padding=1))
    h = torch.relu(torch.nn.functional.conv2d(h, c2.weight, c2.bias, stride=2, padding=1))
    assert h.shape[1:] == (16, 7, 7)
    expected = h.reshape(3, -1) @ lin.weight.T + lin.bias   # ends with a linear layer
    torch.testing.assert_close(enc(x), expected)


@pytest.mark.parametrize("pooling", ["mean", "max", "meanmax"])
def test_text_pooling_matches_loop_and_ignores_padding(pooling):
    torch.manual_seed(0)
    enc = TextEncoder(20, output_dim=5, embed_dim=4, pooling=pooling)
    ids = torch.tensor([[3, 7, 7, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [19, 2, 5, 11, 4]])
    pooled = enc.pool(ids)
    E = enc.embedding.weight.detach()
    for b, row in enumerate(ids.tolist()):
        toks = [t for t in row if t != 0]
        emb = E[toks] if toks else torch.zeros(0, 4)
        mean = emb.mean(0) if toks else torch.zeros(4)
        mx = emb.max(0).values if toks else torch.zeros(4)
        want = {"mean": mean, "max": mx, "meanmax": torch.cat([mean, mx])}[pooling]
        torch.testing.assert_close(pooled[b].detach(), want)
    # more padding on the right must not change any row's features
    longer = torch.cat([ids, torch.zeros(4, 6, dtype=torch.long)], dim=1)
    torch.testing.assert_close(enc(longer), enc(ids))


def test_bow_single_layer_is_linear():
    enc = BagOfWordsEncoder(10, output_dim=3)
    x = torch.rand(4, 10, generator=_gen())
    lin = enc.mlp[0]
    torch.testing.assert_close(enc(x), x @ lin.weight.T + lin.bias)


def test_audio_batchnorm_standardises_in_eval():
    # in eval mode the input norm uses the running statistics, so a batch of one works
    enc = AudioEncoder(output_dim=4)
    x = 30.0 * torch.randn(64, 40, 63, generator=_gen()) - 50.0
    enc.train()
    for _ in range(120):  # momentum 0.1: the initial 0 decays as 0.9**n
        enc(x)
    torch.testing.assert_close(enc.norm.running_mean, x.mean(dim=(0, 2)), atol=1e-2, rtol=1e-3)
    enc.eval()
    assert enc(x[:1]).shape == (1, 4)


# ---------------------------------------------------------------- gradients


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    g = _gen()
    cases = [
        (ImageEncoder(output_dim=8), torch.rand(6, 1, 28, 28, generator=g)),
        (AudioEncoder(output_dim=8), torch.randn(6, 40, 63, generator=g)),
        (TextEncoder(12, output_dim=8, pooling="meanmax"), torch.arange(1, 12).repeat(6, 1)),
        (BagOfWordsEncoder(12, output_dim=8, hidden_dim=9), torch.rand(6, 12, generator=g)),
    ]
    for enc, x in cases:
        _all_params_get_grad(enc, enc(x))


def test_padding_embedding_gets_no_gradient():
    enc = TextEncoder(10, output_dim=3)
    enc(torch.tensor([[1, 2, 0, 0]])).sum().backward()
    assert enc.embedding.weight.grad[0].abs().sum() == 0


# ---------------------------------------------------------------- bad input


def test_bad_inputs_raise():
    img, aud, txt, bow = ImageEncoder(4), AudioEncoder(4), TextEncoder(10, 4), BagOfWordsEncoder(10, 4)
    with pytest.raises(ValueError, match=r"expected a 4-D tensor \(B, 1, 28, 28\), got shape \(1, 28, 28\)"):
        img(torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match=r"expected shape \(B, 1, 28, 28\), got \(2, 3, 28, 28\)"):
        img(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="finite"):
        img(torch.full((1, 1, 28, 28), float("nan")))
    with pytest.raises(ValueError, match=r"40 mel bands, got \(2, 63, 40\)"):
        aud(torch.zeros(2, 63, 40))
    with pytest.raises(ValueError, match="3-D"):
        aud(torch.zeros(40, 63))
    with pytest.raises(TypeError, match="integer token ids"):
        txt(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"ids in \[0, 10\), got values in \[1, 10\]"):
        txt(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError, match=r"got values in \[-1, 2\]"):
        txt(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match=r"expected shape \(B, 10\), got \(2, 11\)"):
        bow(torch.zeros(2, 11))
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        img("not an image")
    with pytest.raises(ValueError, match="output_dim: expected an integer >= 1, got 0"):
        ImageEncoder(0)
    with pytest.raises(ValueError, match="pooling: expected one of"):
        TextEncoder(10, pooling="sum")
    with pytest.raises(ValueError, match="channels: expected 2"):
        AudioEncoder(channels=(8,))


@pytest.mark.parametrize("make", [lambda: ImageEncoder(4), lambda: AudioEncoder(4), lambda: BagOfWordsEncoder(10, 4),
                                  lambda: TextEncoder(10, 4)], ids=["image", "audio", "bow", "text"])
def test_features_are_signed_with_no_dead_units(make):
    # The encoders end with a linear layer: features take both signs and, on varied input,
    # no unit is constant (a final ReLU left units that were 0 for every input).
    torch.manual_seed(0)
    enc = make().eval()
    g = _gen()
    x = {ImageEncoder: lambda: torch.rand(64, 1, 28, 28, generator=g),
         AudioEncoder: lambda: torch.randn(64, 40, 20, generator=g),
         BagOfWordsEncoder: lambda: torch.rand(64, 10, generator=g),
         TextEncoder: lambda: torch.randint(1, 10, (64, 6), generator=g)}[type(enc)]()
    with torch.no_grad():
        y = enc(x)
    assert (y < 0).any() and (y > 0).any()
    assert (y.std(dim=0) > 0).all()
