"""Plausible wrong answers to chapter 5's exercises; tests/test_labs.py checks that each is
rejected with a hint. Each entry is code that defines the answer's name, as a student might."""

WRONG = {
    "5.1": [
        "n_params_mha = 3072    # the four weight matrices, biases forgotten",
        "n_params_mha = 4 * (32 * 32 + 32)    # every projection reads 32 features (kdim, vdim ignored)",
        "n_params_mha = 3200 // 4    # divided by the number of heads",
        "n_params_mha = 2144    # W^Q, W^K, W^V with biases: the output projection forgotten",
    ],
    "5.2": [
        # the transpose: query i sees keys j >= i (the future)
        "def causal_mask(L):\n    i = torch.arange(L)\n    return i[None, :] >= i[:, None]",
        # strict: a query may not see itself
        "def causal_mask(L):\n    i = torch.arange(L)\n    return i[None, :] < i[:, None]",
        # nn.MultiheadAttention's convention (True = ignored)
        "def causal_mask(L):\n    return torch.ones(L, L, dtype=torch.bool).triu(1)",
        # the right pattern as a float tensor
        "def causal_mask(L):\n    return torch.ones(L, L).tril()",
    ],
    "5.3": [
        # the scale of section 3, sigma ignored
        "def score_scale(d, sigma):\n    return 1.0 / math.sqrt(d)",
        # divides by the standard deviation of one entry only
        "def score_scale(d, sigma):\n    return 1.0 / (sigma * math.sqrt(d))",
        # divides by the variance instead of the standard deviation
        "def score_scale(d, sigma):\n    return 1.0 / (sigma ** 4 * d)",
    ],
}
