"""Plausible wrong answers to chapter 2's exercises; tests/test_labs.py checks that each is
rejected with a hint. Each entry is code that defines the answer's name, as a student might."""

WRONG = {
    "2.1": [
        # forgot the appended 1 in every count
        "n_tfn, n_lmf, n_tucker = 32 * 32 * 8 * 10, 4 * 10 * (32 + 32 + 8), (32 * 8 + 32 * 8 + 8 * 4) + 8 * 8 * 4 * 10 + 10 * 10",
        # LMF without the output dimension C; Tucker without its output factor
        "n_tfn, n_lmf, n_tucker = 98010, 4 * (33 + 33 + 9), (33 * 8 + 33 * 8 + 9 * 4) + 8 * 8 * 4 * 10",
        # the TFN counted with a bias per output
        "n_tfn, n_lmf, n_tucker = 98010 + 10, 3000, 3224",
    ],
    "2.2": [
        # the factors instead of their transposes: the shapes do not fit
        "def best_core(X, factors):\n"
        "    G = X\n"
        "    for n, U in enumerate(factors):\n"
        "        G = mode_dot(G, U, n)\n"
        "    return G",
        # the HOSVD core of X at the same ranks, ignoring the given factors
        "def best_core(X, factors):\n"
        "    return mt.hosvd(X, [U.shape[1] for U in factors])[0]",
        # forgot the last mode
        "def best_core(X, factors):\n"
        "    G = X\n"
        "    for n, U in enumerate(factors[:-1]):\n"
        "        G = mode_dot(G, U.T, n)\n"
        "    return G",
    ],
    "2.3": [
        # the bias added in every term instead of once
        "def concat_to_low_rank(concat):\n"
        "    M, C = concat.n_modalities, concat.output_dim\n"
        "    lmf = LowRankFusion(concat.input_dims, C, rank=M)\n"
        "    with torch.no_grad():\n"
        "        for m, (A, W_m) in enumerate(zip(lmf.factors, concat.blocks())):\n"
        "            A.zero_()\n"
        "            A[-1, :, :] = 1.0\n"
        "            A[:, m, :] = 0.0\n"
        "            A[:-1, m, :] = W_m.T\n"
        "            A[-1, m, :] = concat.linear.bias\n"
        "    return lmf",
        # forgot the 1 that every other modality contributes: each term is multiplied by 0
        "def concat_to_low_rank(concat):\n"
        "    M, C = concat.n_modalities, concat.output_dim\n"
        "    lmf = LowRankFusion(concat.input_dims, C, rank=M)\n"
        "    with torch.no_grad():\n"
        "        for m, (A, W_m) in enumerate(zip(lmf.factors, concat.blocks())):\n"
        "            A.zero_()\n"
        "            A[:-1, m, :] = W_m.T\n"
        "            if m == 0:\n"
        "                A[-1, m, :] = concat.linear.bias\n"
        "    return lmf",
        # W_m without the transpose: (C, D_m) does not fit a (D_m, C) slot
        "def concat_to_low_rank(concat):\n"
        "    M, C = concat.n_modalities, concat.output_dim\n"
        "    lmf = LowRankFusion(concat.input_dims, C, rank=M)\n"
        "    with torch.no_grad():\n"
        "        for m, (A, W_m) in enumerate(zip(lmf.factors, concat.blocks())):\n"
        "            A.zero_()\n"
        "            A[-1, :, :] = 1.0\n"
        "            A[:, m, :] = 0.0\n"
        "            A[:-1, m, :] = W_m\n"
        "    return lmf",
        # rank 1: one product term cannot be a sum
        "def concat_to_low_rank(concat):\n"
        "    return LowRankFusion(concat.input_dims, concat.output_dim, rank=1)",
    ],
}
