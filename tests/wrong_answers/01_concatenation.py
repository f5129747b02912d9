"""Plausible wrong answers to chapter 1's exercises; tests/test_labs.py checks that each is
rejected with a hint. Each entry is code that defines the answer's name, as a student might."""

WRONG = {
    "1.1": [
        "n_early, n_late = 1610, 1630    # forgot late fusion's weight logits",
        "n_early, n_late = 1600, 1603    # forgot the biases",
        "n_early, n_late = 1610, 1613    # late = early + the weight logits (one bias, not three)",
        "n_early, n_late = '1610', '1633'",
    ],
    "1.2": [
        # the heads' weights without the modality weights w_m
        "def late_to_early(late):\n"
        "    early = ConcatFusion(late.input_dims, output_dim=late.output_dim)\n"
        "    early.linear.weight.data.copy_(torch.cat([h.weight.detach() for h in late.heads], dim=1))\n"
        "    early.linear.bias.data.copy_(sum(h.bias.detach() for h in late.heads))\n"
        "    return early",
        # weighted blocks, but the biases summed without their weights
        "def late_to_early(late):\n"
        "    ws = late.weights.detach()\n"
        "    early = ConcatFusion(late.input_dims, output_dim=late.output_dim)\n"
        "    early.linear.weight.data.copy_(torch.cat([w * h.weight.detach() for w, h in zip(ws, late.heads)], dim=1))\n"
        "    early.linear.bias.data.copy_(sum(h.bias.detach() for h in late.heads))\n"
        "    return early",
        # the weight logits a used as the weights, not softmax(a)
        "def late_to_early(late):\n"
        "    ws = late.weight_logits.detach()\n"
        "    early = ConcatFusion(late.input_dims, output_dim=late.output_dim)\n"
        "    early.linear.weight.data.copy_(torch.cat([w * h.weight.detach() for w, h in zip(ws, late.heads)], dim=1))\n"
        "    early.linear.bias.data.copy_(sum(w * h.bias.detach() for w, h in zip(ws, late.heads)))\n"
        "    return early",
        # the bare concatenation, without an output layer
        "def late_to_early(late):\n    return ConcatFusion(late.input_dims)",
    ],
    "1.3": [
        # the concatenation: still no product of the two modalities
        "def bilinear(x1, x2):\n    return torch.cat([x1, x2], dim=1)",
        # the outer product of one modality with itself
        "def bilinear(x1, x2):\n    return torch.einsum('bi,bj->bij', x1, x1).flatten(start_dim=1)",
        # the outer product, not flattened to (B, F)
        "def bilinear(x1, x2):\n    return torch.einsum('bi,bj->bij', x1, x2)",
    ],
}
