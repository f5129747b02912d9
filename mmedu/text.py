"""Text features: a tokenizer, a vocabulary, token-id and bag-of-words encodings.

The pipeline the data chapter walks through::

    caption str → tokenize         → list of lowercase tokens
    captions    → Vocabulary.build → token ↔ id table (0 = "<pad>", 1 = "<unk>")
    captions    → encode           → (N, L) int64 ids, right-padded with 0
                                     (for embeddings, RNNs, attention)
    captions    → bag_of_words     → (N, V) float32 counts
                                     (for linear models, MLPs)

Everything is deterministic: the vocabulary order depends only on the token
counts (most frequent first, ties alphabetical), never on dict or set order, so
the same captions give the same ids on every machine.  A vocabulary is saved as
plain JSON through :meth:`Vocabulary.to_dict` / :meth:`Vocabulary.from_dict`
(no pickle).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np
import torch

from ._checks import as_tensor, check_ndim, check_positive_int

__all__ = ["TOKEN_PATTERN", "PAD", "UNK", "tokenize", "Vocabulary"]

#: A token is a run of letters/digits, optionally joined to further runs by single
#: hyphens or apostrophes: ``right-leaning`` and ``don't`` stay one token, ``7`` is a
#: token, punctuation (``, . ; : ! ?`` …) and whitespace separate tokens and are dropped.
#: ``[^\W_]`` is "a word character except the underscore", i.e. any Unicode letter or
#: digit, so accented words survive.  A decimal such as ``3.5`` becomes ``3``, ``5``.
TOKEN_PATTERN = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")

PAD = "<pad>"  #: The padding token (id 0 in every :class:`Vocabulary`).
UNK = "<unk>"  #: The token of out-of-vocabulary words (id 1).


def tokenize(text: str) -> list[str]:
    """Split one caption into lowercase tokens (see :data:`TOKEN_PATTERN`).

    >>> tokenize("A thick, right-leaning digit; it is odd.")
    ['a', 'thick', 'right-leaning', 'digit', 'it', 'is', 'odd']
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    return TOKEN_PATTERN.findall(text.lower())


def _as_text_list(texts, name: str = "texts") -> list[str]:
    """Return ``texts`` as a list of str; refuse a bare string (it would iterate characters)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"{name}: expected a list of strings, got a single {type(texts).__name__} "
            f"(wrap it in a list: [{texts[:20]!r}…])"
        )
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    try:
        out = list(texts)
    except TypeError:
        raise TypeError(f"{name}: expected a list of strings, got {type(texts).__name__}") from None
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"{name}: expected a list of strings, got {type(t).__name__} at position {i}")
    return out


class Vocabulary:
    """An ordered token ↔ id table whose ids 0 and 1 are ``"<pad>"`` and ``"<unk>"``.

    Build one from training captions with :meth:`build`; construct directly from
    an ordered token list (which must start with ``"<pad>", "<unk>"``) only to
    restore a saved vocabulary.

    Attributes
    ----------
    pad_id : int
        0, the id of ``"<pad>"``.
    unk_id : int
        1, the id of ``"<unk>"``.
    tokens : tuple[str, ...]
        All tokens in id order (``tokens[i]`` has id ``i``).
    """

    pad_id = 0
    unk_id = 1

    def __init__(self, tokens: Sequence[str]):
        tokens = _as_text_list(tokens, "tokens")
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"tokens: expected the list to start with {[PAD, UNK]}, got {tokens[:2]}")
        index: dict[str, int] = {}
        for i, tok in enumerate(tokens):
            if tok in index:
                raise ValueError(f"tokens: expected unique tokens, {tok!r} appears at positions {index[tok]} and {i}")
            index[tok] = i
        self._tokens = tuple(tokens)
        self._index = index

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None) -> "Vocabulary":
        """Count the tokens of ``texts`` and keep the frequent ones.

        Parameters
        ----------
        texts : list of str
            Training captions (never the test captions: that leaks test words).
        min_freq : int
            Keep tokens seen at least this many times; rarer ones map to ``"<unk>"``.
        max_size : int or None
            Upper bound on ``len(vocab)`` *including* ``"<pad>"`` and ``"<unk>"``
            (so at least 2); the most frequent tokens are kept.

        Order: by count, descending; ties broken alphabetically — so the ids do not
        depend on the order in which captions or tokens were first seen.
        """
        texts = _as_text_list(texts)
        min_freq = check_positive_int(min_freq, "min_freq")
        if max_size is not None:
            max_size = check_positive_int(max_size, "max_size", minimum=2)
        counts = Counter(tok for t in texts for tok in tokenize(t))
        kept = sorted((tok for tok, c in counts.items() if c >= min_freq), key=lambda tok: (-counts[tok], tok))
        if max_size is not None:
            kept = kept[: max_size - 2]
        return cls([PAD, UNK, *kept])

    # ------------------------------------------------------------------ lookup
    @property
    def tokens(self) -> tuple[str, ...]:
        return self._tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash(self._tokens)

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self._tokens[2:7])
        more = ", …" if len(self) > 7 else ""
        return f"Vocabulary(size={len(self)}, tokens=[<pad>, <unk>, {head}{more}])"

    def token_to_id(self, token: str) -> int:
        """Id of ``token``; ``unk_id`` (1) for a token not in the vocabulary."""
        if not isinstance(token, str):
            raise TypeError(f"token: expected a str, got {type(token).__name__}")
        return self._index.get(token, self.unk_id)

    def id_to_token(self, idx: int) -> str:
        """Token with id ``idx`` (``0 <= idx < len(self)``; a one-element integer tensor is fine)."""
        if isinstance(idx, torch.Tensor) and idx.numel() == 1 and not idx.is_floating_point() and idx.dtype != torch.bool:
            idx = int(idx)
        idx = check_positive_int(idx, "idx", minimum=0, maximum=len(self) - 1)
        return self._tokens[idx]

    # ------------------------------------------------------------------ encodings
    def encode(self, texts: Sequence[str], max_len: int | None = None) -> torch.Tensor:
        """Token ids of each caption, right-padded with ``pad_id``.

        Parameters
        ----------
        texts : list of str, length N
        max_len : int or None
            Truncate (keep the first ``max_len`` tokens) and pad to this length.
            ``None``: pad to the longest caption (at least 1 column, so an all-empty
            batch is still a valid ``(N, 1)`` input of padding).

        Returns
        -------
        ids : (N, L) int64 tensor; unknown tokens are ``unk_id``.
        """
        texts = _as_text_list(texts)
        if max_len is not None:
            max_len = check_positive_int(max_len, "max_len")
        seqs = [[self._index.get(tok, self.unk_id) for tok in tokenize(t)] for t in texts]
        length = max_len if max_len is not None else max([1, *map(len, seqs)])
        padded = [seq[:length] + [self.pad_id] * (length - len(seq[:length])) for seq in seqs]
        return torch.tensor(padded, dtype=torch.int64).reshape(len(seqs), length)

    def decode(self, ids: torch.Tensor | np.ndarray | Sequence[Sequence[int]]) -> list[str]:
        """Inverse of :meth:`encode` up to tokenization: ``(N, L)`` ids → N strings.

        Padding ids are dropped, tokens joined by single spaces; unknown words come
        back as ``"<unk>"``.  For one sequence pass ``ids[None]``.
        """
        t = as_tensor(ids, "ids")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"ids: expected an integer tensor, got dtype {t.dtype}")
        check_ndim(t, "ids", 2, "(N, L) of token ids (for one sequence pass ids[None])")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= len(self)):
            raise ValueError(
                f"ids: expected ids in [0, {len(self) - 1}], got values in [{int(t.min())}, {int(t.max())}]"
            )
        return [" ".join(self._tokens[i] for i in row if i != self.pad_id) for row in t.tolist()]

    def bag_of_words(self, texts: Sequence[str], binary: bool = False) -> torch.Tensor:
        """Token counts of each caption: ``(N, V)`` float32 with ``V = len(self)``.

        Column ``j`` counts token ``tokens[j]``; out-of-vocabulary tokens are counted
        in column ``unk_id`` (1), the ``"<pad>"`` column is always 0.  ``binary=True``
        records presence (0/1) instead of counts.
        """
        texts = _as_text_list(texts)
        if not isinstance(binary, bool):
            raise TypeError(f"binary: expected a bool, got {type(binary).__name__}")
        # Collect (row, column) pairs in Python and scatter once: element-wise tensor
        # writes cost microseconds each and made this 10x slower.
        rows, cols = [], []
        for i, t in enumerate(texts):
            ids = [self._index.get(tok, self.unk_id) for tok in tokenize(t)]
            rows.extend([i] * len(ids))
            cols.extend(ids)
        bow = torch.zeros((len(texts), len(self)), dtype=torch.float32)
        bow.index_put_((torch.tensor(rows, dtype=torch.int64), torch.tensor(cols, dtype=torch.int64)),
                       torch.ones(len(rows)), accumulate=True)
        if binary:
            bow.clamp_(max=1.0)  # several unknown words share the <unk> column
        return bow

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict:
        """JSON-friendly description: ``json.dump(vocab.to_dict(), f)`` saves it."""
        return {"format": "mmedu.text.Vocabulary", "version": 1, "tokens": list(self._tokens)}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        """Rebuild a vocabulary saved with :meth:`to_dict`."""
        if not isinstance(d, dict):
            raise TypeError(f"d: expected a dict from Vocabulary.to_dict(), got {type(d).__name__}")
        if d.get("format") != "mmedu.text.Vocabulary" or "tokens" not in d:
            raise ValueError(
                f"d: expected a dict with format 'mmedu.text.Vocabulary' and 'tokens', "
                f"got format {d.get('format')!r} and keys {sorted(d)}"
            )
        if d.get("version") != 1:
            raise ValueError(f"d: expected version 1, got {d.get('version')!r}")
        return cls(d["tokens"])
