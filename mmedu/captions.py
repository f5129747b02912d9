"""Captions for handwritten digits, made from properties measured on each image.

Used by the build script of the embedded dataset (``scripts/build_mmdigits.py``) and
documented here so that a reader can see exactly what the text modality contains.

A caption has two parts:

1. **Measured description (instance level).** From the pixels of *that* image:
   stroke thickness (``2 · ink area / ink perimeter``, in pixels), slant (the angle of the
   principal lean from the second-order moments ``−μ_rc / μ_rr``), width and height of the
   ink's bounding box, and how much of the frame is inked.  Each is put into words
   ("very thin strokes", "leans slightly to the right", "narrow") and, in some phrasings,
   as a rounded number ("about 11 pixels wide").  Two different images of the same digit
   therefore usually get different captions.
2. **A partial, varying clue about the digit (class level)**, drawn at random:

   ============  ===========  ====================================================
   kind          probability  example
   ============  ===========  ====================================================
   name          0.25         "it is a seven" / "the number 7"
   parity        0.20         "it is an odd digit"
   range         0.15         "a digit below 6" (threshold drawn from 3..7)
   shape family  0.15         "it has a closed loop" (0, 6, 8, 9); "straight strokes
                              only" (1, 4, 7); "curved, with no closed loop" (2, 3, 5)
   none          0.25         —
   ============  ===========  ====================================================

   The shape family is a property of the digit *class*, not measured on the image.

Several sentence templates and synonyms are drawn at random (seeded), so the captions do
not share one fixed template.  Text alone therefore identifies the digit only partly:
the data chapter measures how well (text-only test accuracy).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DIGIT_WORDS", "SHAPE_FAMILY", "CLUE_PROBABILITIES", "measure_digits", "make_captions"]

#: The English word of each digit, indexed by the digit.
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Class-level shape families used by the "shape family" clue.
SHAPE_FAMILY = {0: "loop", 6: "loop", 8: "loop", 9: "loop", 1: "straight", 4: "straight", 7: "straight",
                2: "curve", 3: "curve", 5: "curve"}
#: Probability of each kind of class-level clue in a caption (the table above).
CLUE_PROBABILITIES = {"name": 0.25, "parity": 0.20, "range": 0.15, "family": 0.15, "none": 0.25}


def measure_digits(images: np.ndarray) -> dict[str, np.ndarray]:
    """Measure geometric properties of digit images.

    Args:
        images: ``(N, 28, 28)`` uint8 (0–255) or float in [0, 1].

    Returns:
        dict of ``(N,)`` float64 arrays: ``thickness`` (pixels), ``slant_deg`` (positive =
        top leans right), ``width`` and ``height`` (pixels, bounding box of pixels > 0.5),
        ``ink`` (fraction of the frame above 0.5).
    """
    x = images.astype(np.float64)
    if x.max() > 1.0:
        x = x / 255.0
    n, h, w = x.shape
    mask = x > 0.5
    area = mask.sum(axis=(1, 2)).astype(np.float64)
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    # Perimeter = number of ink/background pixel edges; for a stroke of length L and width t,
    # area ≈ L·t and perimeter ≈ 2L, so 2·area/perimeter estimates t.
    perim = (np.abs(np.diff(padded.astype(np.int8), axis=1)).sum(axis=(1, 2))
             + np.abs(np.diff(padded.astype(np.int8), axis=2)).sum(axis=(1, 2))).astype(np.float64)
    thickness = 2.0 * area / np.maximum(perim, 1.0)
    rows = mask.any(axis=2)
    cols = mask.any(axis=1)
    height = np.where(rows.any(1), h - np.argmax(rows[:, ::-1], 1) - np.argmax(rows, 1), 0).astype(np.float64)
    width = np.where(cols.any(1), w - np.argmax(cols[:, ::-1], 1) - np.argmax(cols, 1), 0).astype(np.float64)
    r = np.arange(h, dtype=np.float64)[None, :, None]
    c = np.arange(w, dtype=np.float64)[None, None, :]
    mass = x.sum(axis=(1, 2))
    r_bar = (x * r).sum(axis=(1, 2)) / mass
    c_bar = (x * c).sum(axis=(1, 2)) / mass
    mu_rr = (x * (r - r_bar[:, None, None]) ** 2).sum(axis=(1, 2))
    mu_rc = (x * (r - r_bar[:, None, None]) * (c - c_bar[:, None, None])).sum(axis=(1, 2))
    # Rows grow downwards: a right-leaning digit has its top to the right, i.e. μ_rc < 0.
    slant = np.degrees(np.arctan(-mu_rc / mu_rr))
    return {"thickness": thickness, "slant_deg": slant, "width": width, "height": height,
            "ink": area / (h * w)}


def _thickness_words(t: float, edges: np.ndarray) -> str:
    names = ("very thin", "thin", "medium", "thick", "very thick")
    return names[int(np.searchsorted(edges, t, side="right"))]


def _slant_phrase(deg: float, rng: np.random.Generator) -> str:
    if deg < -8:
        opts = ("leans to the left", "is tilted to the left", "slants left")
    elif deg < 8:
        opts = ("stands upright", "is upright", "has no visible slant")
    elif deg < 22:
        opts = ("leans slightly to the right", "is tilted a little to the right", "slants slightly right")
    else:
        opts = ("leans strongly to the right", "is steeply tilted to the right", "slants hard to the right")
    return opts[rng.integers(len(opts))]


def _width_word(wd: float) -> str:
    if wd <= 8:
        return "very narrow"
    if wd <= 14:
        return "narrow"
    if wd <= 18:
        return "of medium width"
    return "wide"


def _ink_phrase(ink: float, edges: np.ndarray, rng: np.random.Generator) -> str:
    level = int(np.searchsorted(edges, ink, side="right"))
    opts = (("uses little ink", "is lightly inked"), ("uses a moderate amount of ink", "is moderately inked"),
            ("uses a lot of ink", "is heavily inked"))[level]
    return opts[rng.integers(len(opts))]


def _clue(label: int, rng: np.random.Generator) -> tuple[str, str | None]:
    """Draw a clue kind (a key of ``CLUE_PROBABILITIES``) and its sentence (``None`` for "none")."""
    kinds = list(CLUE_PROBABILITIES)
    kind = kinds[rng.choice(len(kinds), p=list(CLUE_PROBABILITIES.values()))]
    word = DIGIT_WORDS[label]
    if kind == "name":
        opts = (f"It is a {word}.", f"The number {label}.", f"This is the digit {word}.", f"A handwritten {label}.")
    elif kind == "parity":
        p = "odd" if label % 2 else "even"
        opts = (f"It is an {p} digit.", f"The digit is {p}.", f"An {p} number.")
    elif kind == "range":
        t = int(rng.integers(3, 8))
        if label < t:
            opts = (f"A digit below {t}.", f"The number is smaller than {t}.")
        else:
            opts = (f"A digit of {t} or more.", f"The number is at least {t}.")
    elif kind == "family":
        fam = SHAPE_FAMILY[label]
        opts = {"loop": ("It has a closed loop.", "Its shape contains a closed loop."),
                "straight": ("It is drawn with straight strokes only.", "Only straight lines, no curves."),
                "curve": ("It is curved but has no closed loop.", "Curvy strokes without any closed loop.")}[fam]
    else:
        return kind, None
    return kind, opts[rng.integers(len(opts))]


def make_captions(images: np.ndarray, labels: np.ndarray, seed: int,
                  reference: dict[str, np.ndarray] | None = None,
                  return_clues: bool = False) -> list[str] | tuple[list[str], list[str]]:
    """One caption per image (see the module docstring for how).

    Args:
        images: ``(N, 28, 28)`` uint8 or float in [0, 1].
        labels: ``(N,)`` ints 0–9.
        seed: seeds the random choices of clue and phrasing.
        reference: measurements (from :func:`measure_digits`) whose quantiles set the
            word boundaries of thickness and ink; default: those of ``images``.
        return_clues: also return, for every caption, the kind of clue it was given (a key
            of ``CLUE_PROBABILITIES``: ``"name"``, ``"parity"``, ``"range"``, ``"family"`` or
            ``"none"``) — the generator's own record, so that nobody has to guess the clue
            back from the words. The captions are the same either way.

    Returns:
        the list of ``N`` captions, or ``(captions, clue_kinds)`` with ``return_clues=True``.
    """
    m = measure_digits(images)
    ref = m if reference is None else reference
    t_edges = np.quantile(ref["thickness"], [0.2, 0.4, 0.6, 0.8])
    ink_edges = np.quantile(ref["ink"], [1 / 3, 2 / 3])
    rng = np.random.default_rng(seed)
    captions, kinds = [], []
    for i, y in enumerate(labels.tolist()):
        thick = _thickness_words(m["thickness"][i], t_edges)
        slant = _slant_phrase(m["slant_deg"][i], rng)
        width = _width_word(m["width"][i])
        w_px, h_px = int(m["width"][i]), int(m["height"][i])
        ink = _ink_phrase(m["ink"][i], ink_edges, rng)
        deg = int(5 * round(abs(m["slant_deg"][i]) / 5))
        subject = ("A handwritten digit", "This digit", "The digit", "A digit")[rng.integers(4)]
        template = int(rng.integers(5))
        if template == 0:
            body = f"{subject} with {thick} strokes that {slant}. It is {width}, about {w_px} pixels wide."
        elif template == 1:
            body = f"{subject} {slant} and is {width}; the strokes are {thick}."
        elif template == 2:
            body = f"{thick.capitalize()} strokes, {width}, {w_px} by {h_px} pixels. It {slant}."
        elif template == 3:
            body = f"{subject} {ink}, has {thick} strokes and {slant} (a slant of about {deg} degrees)."
        else:
            body = f"{subject} is {width} ({w_px} px) and {slant}; it {ink}."
        kind, clue = _clue(int(y), rng)
        kinds.append(kind)
        if clue is None:
            captions.append(body)
        elif rng.random() < 0.5:
            captions.append(f"{clue} {body}")
        else:
            captions.append(f"{body} {clue}")
    return (captions, kinds) if return_clues else captions

