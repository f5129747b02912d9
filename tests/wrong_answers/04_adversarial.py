"""Plausible wrong answers to chapter 4's exercises; tests/test_labs.py checks that each is
rejected with a hint. Each entry is code that defines the answer's name, as a student might."""

WRONG = {
    "4.1": [
        "d_star_at_0 = 0.119    # 1 - D*: the probability of 'fake'",
        "d_star_at_0 = 0.5      # D* = 1/2 everywhere, as at the equilibrium",
        "d_star_at_0 = 'sigma(2)'",
    ],
    "4.2": [
        # the direct form: right for moderate logits, inf at -200
        "def ns_loss(logits):\n    return -torch.log(torch.sigmoid(logits)).mean()",
        # the minimax (saturating) loss instead of the non-saturating one
        "def ns_loss(logits):\n    return torch.log1p(-torch.sigmoid(logits).clamp(max=1 - 1e-7)).mean()",
        # summed over the batch instead of averaged
        "def ns_loss(logits):\n"
        "    return -(torch.clamp(logits, max=0) - torch.log1p(torch.exp(-logits.abs()))).sum()",
        # right values, but torch does the stable rewrite that the exercise asks for
        "def ns_loss(logits):\n    return -F.logsigmoid(logits).mean()",
        "def ns_loss(logits):\n    return F.softplus(-logits).mean()",
    ],
    "4.3": [
        # forgets the minus sign
        "class Reverse(torch.autograd.Function):\n"
        "    @staticmethod\n"
        "    def forward(ctx, x, lam):\n"
        "        ctx.lam = lam\n"
        "        return x.view_as(x)\n"
        "    @staticmethod\n"
        "    def backward(ctx, grad_output):\n"
        "        return ctx.lam * grad_output, None\n"
        "def reverse(x, lam):\n"
        "    return Reverse.apply(x, lam)",
        # negates the forward pass too
        "def reverse(x, lam):\n    return -lam * x",
    ],
}
