"""n-order Markov chains over characters or words (numpy, vectorised).

Counts are kept sparse: for each order ``k = 0..n`` the observed ``(context of k symbols,
next symbol)`` pairs are encoded as base-``V`` integers, ``np.unique``-counted and stored
sorted, so look-ups are ``np.searchsorted`` over whole arrays — no Python dicts, no loops
over the text.

Probabilities:

* ``smoothed=False``: the maximum-likelihood estimate ``N(c, x) / N(c)`` — what the lab
  computes (its "most likely letter after 'j'", its sampling).
* ``smoothed=True`` (used for held-out log-likelihood): interpolated Dirichlet smoothing
  towards the next-lower order, ``P_k(x | c) = (N(c, x) + β P_{k-1}(x | c')) / (N(c) + β)``
  with ``c'`` the last ``k-1`` symbols of ``c`` and ``P_0(x) = (N(x) + 1) / (N + V)``
  (Laplace). An unseen context thus falls back to the lower order; every probability is > 0.

Shapes: ``V`` symbols in the alphabet, ``T`` symbols of a text, ``N`` rows of a count table
or of a batch of queries, ``K`` symbols of context (at most ``order``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from seqjax import SeqjaxError
from seqjax.data.tokenize import regex_tokenize


def max_order(V: int) -> int:
    """The highest order whose contexts over ``V`` symbols still fit int64 codes (``V ** (order + 1) < 2 ** 62``)."""
    return max(k for k in range(64) if float(V) ** (k + 1) < 2.0**62)


def symbols_of(text: str, unit: str) -> list[str]:
    """``text`` as chars (``unit="char"``) or regex word tokens (``unit="word"``)."""
    if unit == "char":
        return list(text)
    if unit == "word":
        return regex_tokenize(text, lower=True)
    raise SeqjaxError(f"--unit {unit!r}: choose 'char' or 'word'")


@dataclasses.dataclass
class MarkovChain:
    """An n-order chain. Build with :meth:`fit`.

    Attributes:
      order: n (context length).
      symbols: the alphabet (``list[str]``, sorted), ``V = len(symbols)``; ``"<unk>"`` is
        added for word chains so unseen held-out words have a symbol.
      beta: smoothing strength (see module docstring).
    """

    order: int
    symbols: list[str]
    beta: float = 1.0

    def __post_init__(self):
        self.V = len(self.symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        if self.order < 0:
            raise SeqjaxError(f"--order {self.order}: give a whole number >= 0")
        if float(self.V) ** (self.order + 1) >= 2.0**62:
            raise SeqjaxError(f"--order {self.order}: over {self.V} symbols its contexts overflow int64 codes; "
                              f"give --order {max_order(self.V)} or less")
        self.pair_keys: list[np.ndarray] = []
        self.pair_counts: list[np.ndarray] = []
        self.ctx_keys: list[np.ndarray] = []
        self.ctx_counts: list[np.ndarray] = []

    # ---- building -------------------------------------------------------------------------
    def encode(self, seq: Sequence[str]) -> np.ndarray:
        """symbols -> ``int64[T]`` (``T = len(seq)``); unknown symbols map to ``<unk>`` or raise."""
        unk = self.index.get("<unk>")
        try:
            return np.fromiter((self.index[s] if unk is None else self.index.get(s, unk)
                                for s in seq), np.int64, count=len(seq))
        except KeyError as err:
            raise SeqjaxError(f"symbol {err.args[0]!r} is not in the chain's alphabet") from None

    @classmethod
    def fit(cls, seq: Sequence[str], order: int = 1, beta: float = 1.0,
            alphabet: Sequence[str] | None = None, unk: bool = False) -> "MarkovChain":
        """Count transitions of every order ``0..order`` in ``seq`` (a list of symbols)."""
        if len(seq) <= order:
            raise SeqjaxError(f"--order {order}: the training text has {len(seq)} symbols, an order-{order} chain "
                              f"needs more; give a lower --order or a longer --text")
        alpha = sorted(set(alphabet if alphabet is not None else seq) | ({"<unk>"} if unk else set()))
        chain = cls(order, alpha, beta)
        ids_T = chain.encode(seq)
        for k in range(order + 1):
            codes = chain._codes(ids_T, k + 1)
            keys_N, counts_N = np.unique(codes, return_counts=True)
            ctx_N, inv_N = np.unique(keys_N // chain.V, return_inverse=True)
            chain.pair_keys.append(keys_N)
            chain.pair_counts.append(counts_N)
            chain.ctx_keys.append(ctx_N)
            chain.ctx_counts.append(np.bincount(inv_N.reshape(-1), weights=counts_N).astype(np.int64))
        return chain

    def _codes(self, ids_T: np.ndarray, width: int) -> np.ndarray:
        """Base-V codes of every run of ``width`` consecutive ids: ``int64[T - width + 1]``."""
        n = len(ids_T) - width + 1
        code = np.zeros(max(n, 0), np.int64)
        for j in range(width):  # width <= order + 1: a handful of vector ops
            code = code * self.V + ids_T[j:j + n]
        return code

    @staticmethod
    def _lookup(keys: np.ndarray, counts: np.ndarray, q: np.ndarray) -> np.ndarray:
        """The count of each code of ``q`` (``int64[N]``) in the sorted table ``keys`` /
        ``counts``, 0 where absent: ``int64[N]``."""
        idx_N = np.searchsorted(keys, q)
        idx_c_N = np.minimum(idx_N, len(keys) - 1)
        return np.where((idx_N < len(keys)) & (keys[idx_c_N] == q), counts[idx_c_N], 0)

    # ---- queries --------------------------------------------------------------------------
    def count(self, context: Sequence[str], nxt: str) -> int:
        """Number of times ``nxt`` followed ``context`` (the lab's 'a' -> 'b' count)."""
        k = len(context)
        if k > self.order:
            raise SeqjaxError(f"context of {k} symbols is longer than the order {self.order}")
        code = self._codes(self.encode(list(context) + [nxt]), k + 1)
        return int(self._lookup(self.pair_keys[k], self.pair_counts[k], code)[0])

    def next_distribution(self, context: Sequence[str], smoothed: bool = False) -> np.ndarray:
        """``float64[V]``: P(next | the last ``order`` symbols of ``context``).

        With ``smoothed=False`` an unseen context gives all zeros (the MLE is undefined there).
        Shorter contexts use the chain of their own length.
        """
        ctx = self.encode(list(context)[-self.order:] if self.order else [])
        k = len(ctx)
        all_V = np.arange(self.V, dtype=np.int64)
        if not smoothed:
            c = self._codes(ctx, k)[0] if k else np.int64(0)
            cnt_V = self._lookup(self.pair_keys[k], self.pair_counts[k], c * self.V + all_V)
            total = cnt_V.sum()
            return cnt_V / total if total else np.zeros(self.V)
        hist_VK = np.broadcast_to(ctx, (self.V, k))
        return self._smoothed(hist_VK, all_V)

    def _smoothed(self, hist: np.ndarray, x: np.ndarray) -> np.ndarray:
        """P(x_n | hist_n) for rows ``hist int64[N, k]`` (``k <= order`` symbols of context) and
        ``x int64[N]``: ``float64[N]``."""
        n0 = self.pair_counts[0].sum()
        p_N = (self._lookup(self.pair_keys[0], self.pair_counts[0], x) + 1.0) / (n0 + self.V)
        c_N = np.zeros(len(x), np.int64)
        for j in range(1, hist.shape[1] + 1):
            c_N = c_N + hist[:, -j] * self.V ** (j - 1)  # code of the last j symbols
            n_cx_N = self._lookup(self.pair_keys[j], self.pair_counts[j], c_N * self.V + x)
            n_c_N = self._lookup(self.ctx_keys[j], self.ctx_counts[j], c_N)
            p_N = (n_cx_N + self.beta * p_N) / (n_c_N + self.beta)
        return p_N

    def log2_likelihood(self, seq: Sequence[str], context: Sequence[str] = ()) -> np.ndarray:
        """Smoothed ``log2 P`` of each symbol of ``seq``: ``float64[T]`` (``T = len(seq)``).

        ``context`` is the text before ``seq`` (e.g. the training head), so the first symbols
        of a held-out tail get a full-order context.
        """
        ctx = list(context)[-self.order:] if self.order else []
        ids = self.encode(ctx + list(seq))  # int64[k0 + T]
        k0 = len(ctx)
        out_T = np.empty(len(seq))
        # positions with fewer than `order` symbols of history use a shorter context
        for t in range(min(len(seq), max(self.order - k0, 0))):
            h = ids[k0 + t - min(self.order, k0 + t):k0 + t]
            out_T[t] = np.log2(self._smoothed(h[None, :], ids[k0 + t:k0 + t + 1])[0])
        start = max(self.order - k0, 0)
        if start < len(seq):
            pos_N = np.arange(k0 + start, len(ids))
            hist_NK = (ids[pos_N[:, None] - self.order + np.arange(self.order)] if self.order
                       else np.zeros((len(pos_N), 0), np.int64))
            out_T[start:] = np.log2(self._smoothed(hist_NK, ids[pos_N]))
        return out_T

    def bits_per_symbol(self, seq: Sequence[str], context: Sequence[str] = ()) -> float:
        """Held-out cross-entropy in bits per symbol (bits per char for a char chain)."""
        return float(-self.log2_likelihood(seq, context).mean())

    def sample(self, n: int, start: Sequence[str], seed: int = 0) -> list[str]:
        """``start`` followed by ``n`` sampled symbols (MLE transitions; smoothed where unseen)."""
        if not start:
            raise SeqjaxError("--start: give at least one symbol to start sampling from")
        unknown = [s for s in start if s not in self.index] if "<unk>" not in self.index else []
        if unknown:
            hint = next((s for s in self.symbols if s.isalnum()), self.symbols[0])
            raise SeqjaxError(f"--start {''.join(start) if len(start[0]) == 1 else ' '.join(start)!r}: "
                              f"{unknown[0]!r} does not occur in the (lower-cased) text; start from symbols it "
                              f"holds, e.g. --start {hint}")
        rng = np.random.default_rng(seed)
        out = list(start)
        for _ in range(n):
            p_V = self.next_distribution(out, smoothed=False)
            if not p_V.any():
                p_V = self.next_distribution(out, smoothed=True)
            out.append(self.symbols[rng.choice(self.V, p=p_V / p_V.sum())])
        return out
