"""seqjax: sequence models in JAX/Flax.

Layers (data flows down; nothing imports upward)::

    seqjax.data        corpora -> tokens -> ids -> bucketed batches (numpy only)
    seqjax.markov      n-order Markov chains (numpy)
    seqjax.embeddings  GloVe / word2vec analysis (nearest words, analogies, evaluation)
    seqjax.nn          cells, masked scans, char LM, classifiers (flax linen)
    seqjax.train       TrainState, the one fit/evaluate loop, data parallelism, checkpoints
    seqjax.cli         `seqjax <part> <verb>`

Shape names
-----------
A name that holds an array ends in its shape, one capital letter per axis, after an
underscore: ``x_BTE`` is ``[batch, time, embedding]``, ``ids_BT``, ``lengths_B``, ``h_BH``,
``W_GF``. Docstrings write shapes with the same letters and the dtype: ``float32[B, T, E]``,
``int32[B]``. The letters:

====  ===========================================================================
B     batch (rows of a batch, windows, streams)
T     time: steps, tokens or chars of a sequence
E     embedding width
F     input features of a layer
H     hidden units
G     gate width of a recurrent cell (gates x H: H rnn, 4H lstm, 3H gru)
D     feature width of an encoder's output
V     vocabulary size
L     layers
K     kernel width; also, where a module says so, a small count of its own (temperatures)
C     filters / channels
N     rows of a table (words, pairs, examples)
====  ===========================================================================

Read ``x_BTE`` as "x, indexed [b, t, e]"; a ``1`` marks a broadcast axis (``m_B1``). Time-major
arrays put T first (``x_TBF``). Where a module uses a letter otherwise, or an axis that has none
(a stream's length), its docstring says so, or a comment gives the shape where the array is
made. Three kinds of names stay bare: scalars and sizes (``B, T = x.shape[:2]``); the symbols
of an equation written out in a docstring, inside the code of that equation (the LSTM gates
``i, f, g, o``); and names that mirror a parameter's name (``w_ih`` for ``weight_ih``), whose
shapes the module docstring gives. Public function parameters that callers pass by keyword, and
flax parameter names (which PyTorch import and checkpoints match), keep their names.
"""

__version__ = "0.1.0"


class SeqjaxError(Exception):
    """An error the user can fix; the CLI prints its message alone and exits with status 2."""


def first_line(err: BaseException, default: str | None = None) -> str:
    """The first non-blank line of ``err``'s message, for a one-line error that quotes a library's
    multi-line one; ``default`` (else the exception's type name) when the message is empty."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else (type(err).__name__ if default is None else default)
