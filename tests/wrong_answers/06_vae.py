"""Plausible wrong answers to chapter 6's exercises; tests/test_labs.py checks that each is
rejected with a hint. Each entry is code that defines the answer's name, as a student might."""

WRONG = {
    "6.1": [
        # the product without the prior expert: precisions 1 + 2 = 3
        "poe_mean, poe_var = 1 / 3, 1 / 3\nmix_mean, mix_var = 1.0, 4.75",
        # the mixture's variance as the mean of the variances (the spread of the means forgotten)
        "poe_mean, poe_var = 0.25, 0.25\nmix_mean, mix_var = 1.0, 0.75",
        # 0.5 read as a standard deviation: expert 2's variance 0.25, precision 4
        "poe_mean, poe_var = -1 / 6, 1 / 6\nmix_mean, mix_var = 1.0, 4.625",
        # standard deviations instead of variances
        "poe_mean, poe_var = 0.25, 0.5\nmix_mean, mix_var = 1.0, 4.75 ** 0.5",
    ],
    "6.2": [
        # the arguments swapped: KL(p || q)
        "def kl_gaussians(mu_q, logvar_q, mu_p, logvar_p):\n"
        "    return 0.5 * (logvar_q - logvar_p + (logvar_p.exp() + (mu_q - mu_p).pow(2)) / logvar_q.exp() - 1).sum(1)",
        # not summed over the coordinates: shape (B, d)
        "def kl_gaussians(mu_q, logvar_q, mu_p, logvar_p):\n"
        "    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1)",
        # averaged instead of summed over the coordinates
        "def kl_gaussians(mu_q, logvar_q, mu_p, logvar_p):\n"
        "    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1).mean(1)",
        # section 3's formula, p ignored
        "def kl_gaussians(mu_q, logvar_q, mu_p, logvar_p):\n"
        "    return 0.5 * (mu_q.pow(2) + logvar_q.exp() - logvar_q - 1).sum(1)",
    ],
    "6.3": [
        "accuracy_from_clue = 0.25    # only the captions that name the digit count",
        # shape families averaged as if equally likely: (1/4 + 1/3 + 1/3) / 3 instead of 0.3
        "accuracy_from_clue = round(0.25 + 0.2 * 0.2 + 0.15 * 0.2 + 0.15 * (1/4 + 1/3 + 1/3) / 3 + 0.25 * 0.1, 3)",
        # a range clue 'below t' scored as 1/t, the 'not below t' case forgotten
        "accuracy_from_clue = round(0.25 + 0.2 * 0.2 + 0.15 * sum(1 / t for t in range(3, 8)) / 5 + 0.15 * 0.3 + 0.25 * 0.1, 3)",
        "accuracy_from_clue = 0.365   # no guess at all without a clue",
    ],
}
