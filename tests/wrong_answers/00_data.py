"""Plausible wrong answers to chapter 0's exercises; tests/test_labs.py checks that each is
rejected with a hint. Each entry is code that defines the answer's name, as a student might."""

WRONG = {
    "0.1": [
        "n_frames = 1 + (20000 - 256) // 128    # forgot the centring padding",
        "n_frames = 20000 // 128                # forgot the frame at t = 0",
        "n_frames = 2.5 * 63                    # scaled the 1 s count",
        "n_frames = 'about 157'",
    ],
    "0.2": [
        # the mel value rounded to one decimal before converting back: off in the second decimal
        "f_lowest = 700 * (10 ** (52.3 / 2595) - 1)",
        # the centre in mel, not converted back to Hz
        "f_lowest = 2595 * np.log10(1 + 4000 / 700) / 41",
        # 40 steps between the edges instead of 41 (40 filters need 42 edge points)
        "f_lowest = 700 * (10 ** (2595 * np.log10(1 + 4000 / 700) / 40 / 2595) - 1)",
        # equally spaced in Hz, not in mel
        "f_lowest = 4000 / 41",
    ],
    "0.3": [
        # the digit accuracy, not the parity accuracy
        "parity_accuracy = (pred == y).float().mean().item()",
        # 1 - p: the share with the wrong parity
        "parity_accuracy = 1 - ((pred % 2) == (y % 2)).float().mean().item()",
        # the share of items predicted even
        "parity_accuracy = (pred % 2 == 0).float().mean().item()",
        # per-item results, not their mean
        "parity_accuracy = (pred % 2) == (y % 2)",
    ],
}
