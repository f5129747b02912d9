"""Plausible wrong answers to chapter 3's exercises; tests/test_labs.py checks that each is
rejected with a hint. Each entry is code that defines the answer's name, as a student might."""

WRONG = {
    "3.1": [
        "n_directions = 10     # one per digit, forgetting that the centred class means lose one dimension",
        "n_directions = 20     # every pair the audio-image CCA computed",
        "n_directions = '9'    # the right count, as a string",
    ],
    "3.2": [
        # eigh returns ascending eigenvalues: this takes the k most negative ones, -rho
        "def cca_via_gev(X1, X2, k, reg):\n"
        "    n = X1.shape[0]\n"
        "    A1, A2 = X1 - X1.mean(0), X2 - X2.mean(0)\n"
        "    S11 = A1.T @ A1 / (n - 1) + reg * np.eye(X1.shape[1])\n"
        "    S22 = A2.T @ A2 / (n - 1) + reg * np.eye(X2.shape[1])\n"
        "    S12 = A1.T @ A2 / (n - 1)\n"
        "    A = np.block([[np.zeros_like(S11), S12], [S12.T, np.zeros_like(S22)]])\n"
        "    return scipy.linalg.eigh(A, scipy.linalg.block_diag(S11, S22), eigvals_only=True)[:k]",
        # no centring: second moments instead of covariances
        "def cca_via_gev(X1, X2, k, reg):\n"
        "    n = X1.shape[0]\n"
        "    S11 = X1.T @ X1 / (n - 1) + reg * np.eye(X1.shape[1])\n"
        "    S22 = X2.T @ X2 / (n - 1) + reg * np.eye(X2.shape[1])\n"
        "    S12 = X1.T @ X2 / (n - 1)\n"
        "    A = np.block([[np.zeros_like(S11), S12], [S12.T, np.zeros_like(S22)]])\n"
        "    return scipy.linalg.eigh(A, scipy.linalg.block_diag(S11, S22), eigvals_only=True)[::-1][:k]",
        # the ridge forgotten: the caption covariance is singular, B is not positive definite
        "def cca_via_gev(X1, X2, k, reg):\n"
        "    n = X1.shape[0]\n"
        "    A1, A2 = X1 - X1.mean(0), X2 - X2.mean(0)\n"
        "    S11, S22, S12 = A1.T @ A1 / (n - 1), A2.T @ A2 / (n - 1), A1.T @ A2 / (n - 1)\n"
        "    A = np.block([[np.zeros_like(S11), S12], [S12.T, np.zeros_like(S22)]])\n"
        "    return scipy.linalg.eigh(A, scipy.linalg.block_diag(S11, S22), eigvals_only=True)[::-1][:k]",
    ],
    "3.3": [
        # the batch-first formula of section 7 applied to (D, N) matrices: shapes do not fit
        "def objective(X1, X2, W1, W2, lam):\n"
        "    return ((X1 - X1 @ W1 @ W1.T).pow(2).sum() + (X2 - X2 @ W2 @ W2.T).pow(2).sum()\n"
        "            - lam * (W1.T @ W2).pow(2).sum())",
        # Frobenius norms, not squared
        "def objective(X1, X2, W1, W2, lam):\n"
        "    return ((X1 - W1 @ W1.T @ X1).norm() + (X2 - W2 @ W2.T @ X2).norm()\n"
        "            - lam * (W1.T @ W2).norm())",
        # + lambda: the coupling as a penalty instead of a reward
        "def objective(X1, X2, W1, W2, lam):\n"
        "    return ((X1 - W1 @ W1.T @ X1).pow(2).sum() + (X2 - W2 @ W2.T @ X2).pow(2).sum()\n"
        "            + lam * (W1.T @ W2).pow(2).sum())",
    ],
    "3.4": [
        "best_r = 1e-3    # the least regularisation",
        "best_r = 1.0     # the most regularisation",
        "best_r = 1       # the index np.argmax returns, not the ridge",
    ],
}
