"""Plausible wrong answers to chapter 7's exercises; tests/test_labs.py checks that each is
rejected with a hint. Each entry is code that defines the answer's name, as a student might."""

WRONG = {
    "7.1": [
        # one direction only: the image->caption half
        "def symmetric_info_nce(z1, z2, tau):\n"
        "    s = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / tau\n"
        "    return -(s.diagonal() - s.logsumexp(dim=1)).mean()",
        # forgets to normalise: inner products instead of cosines
        "def symmetric_info_nce(z1, z2, tau):\n"
        "    s = z1 @ z2.T / tau\n"
        "    return -((s.diagonal() - s.logsumexp(dim=1)).mean() + (s.diagonal() - s.logsumexp(dim=0)).mean()) / 2",
        # multiplies by the temperature instead of dividing
        "def symmetric_info_nce(z1, z2, tau):\n"
        "    s = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T * tau\n"
        "    return -((s.diagonal() - s.logsumexp(dim=1)).mean() + (s.diagonal() - s.logsumexp(dim=0)).mean()) / 2",
        # sums over the batch instead of averaging
        "def symmetric_info_nce(z1, z2, tau):\n"
        "    s = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / tau\n"
        "    return -((s.diagonal() - s.logsumexp(dim=1)).sum() + (s.diagonal() - s.logsumexp(dim=0)).sum()) / 2",
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
        # the largest nprobe of the table: reaches 0.95, but is not the smallest
        "nprobe = max(ivf_recall)",
        # the last nprobe that stays below 0.95
        "nprobe = max(k for k, v in ivf_recall.items() if v < 0.95)",
        # the fraction of the gallery instead of the number of cells
        "nprobe = min(k for k, v in ivf_recall.items() if v >= 0.95) / 100",
    ],
}
