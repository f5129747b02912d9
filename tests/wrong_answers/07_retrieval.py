"""Plausible wrong answers to chapter 7's exercises; tests/test_labs.py checks that each is
rejected with a hint. Each entry is code that defines the answer's name, as a student might."""

WRONG = {
    "7.1": [
        # VSE: the hinge summed over all negatives instead of the hardest one
        "def vse_pp_from_similarity(S, alpha):\n"
        "    off = ~torch.eye(len(S), dtype=torch.bool)\n"
        "    p = S.diagonal()\n"
        "    rows = ((alpha - p[:, None] + S).clamp_min(0) * off).sum(1)\n"
        "    cols = ((alpha - p[None, :] + S).clamp_min(0) * off).sum(0)\n"
        "    return (rows + cols).mean()",
        # one direction only: the hardest caption of each image
        "def vse_pp_from_similarity(S, alpha):\n"
        "    off = ~torch.eye(len(S), dtype=torch.bool)\n"
        "    return ((alpha - S.diagonal()[:, None] + S).clamp_min(0) * off).amax(1).mean()",
        # the diagonal (the positive itself) left in the max
        "def vse_pp_from_similarity(S, alpha):\n"
        "    p = S.diagonal()\n"
        "    rows = (alpha - p[:, None] + S).clamp_min(0).amax(1)\n"
        "    cols = (alpha - p[None, :] + S).clamp_min(0).amax(0)\n"
        "    return (rows + cols).mean()",
        # calls mmedu's loss, which takes embeddings, on the similarity matrix
        "def vse_pp_from_similarity(S, alpha):\n"
        "    from mmedu.losses import vse_hinge\n"
        "    return vse_hinge(S, torch.eye(len(S), dtype=S.dtype), alpha)",
        # the margin hard-coded to 0.2
        "def vse_pp_from_similarity(S, alpha):\n"
        "    off = ~torch.eye(len(S), dtype=torch.bool)\n"
        "    p = S.diagonal()\n"
        "    rows = ((0.2 - p[:, None] + S).clamp_min(0) * off).amax(1)\n"
        "    cols = ((0.2 - p[None, :] + S).clamp_min(0) * off).amax(0)\n"
        "    return (rows + cols).mean()",
    ],
    "7.2": [
        # ignores k: looks at all 10 columns
        "def recall_from_ids(ids, k):\n"
        "    return (ids == torch.arange(len(ids))[:, None]).any(dim=1).double().mean()",
        # only the k-th column (off by one in the slice)
        "def recall_from_ids(ids, k):\n"
        "    return (ids[:, k - 1] == torch.arange(len(ids))).double().mean()",
        # precision@k instead of recall@k: hits divided by k
        "def recall_from_ids(ids, k):\n"
        "    return (ids[:, :k] == torch.arange(len(ids))[:, None]).double().sum(dim=1).mean() / k",
        # the number of hits, not the fraction of queries
        "def recall_from_ids(ids, k):\n"
        "    return (ids[:, :k] == torch.arange(len(ids))[:, None]).any(dim=1).sum()",
    ],
    "7.3": [
        # the label-trained ACMR-style space
        "deploy = 'ACMR-style'",
        # the worst validation score instead of the best
        "deploy = min(chosen['class'], key=lambda m: chosen['class'][m]['score'])",
        # a number, not a method name
        "deploy = max(r['score'] for r in chosen['class'].values())",
        # a name that is not a row of the table
        "deploy = 'InfoNCE (tau = 0.2)'",
    ],
}
