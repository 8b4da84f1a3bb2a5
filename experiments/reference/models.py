"""The lab's PyTorch models, as the lab and the tutorial it follows define them (torch optional).

* ``CharPredictor`` — embedding 8 -> LSTM 128 (1 or 2 layers) -> linear, last timestep.
* ``RNN`` / ``ImprovedRNN`` — embedding -> nn.RNN / nn.LSTM over packed sequences -> linear.
* ``BiLSTM`` — the tutorial's 2-layer bidirectional packed LSTM with dropout.
* ``FastText`` — embeddings averaged with ``avg_pool2d`` over the (padded) length -> linear.
* ``CNN`` — Kim (2014): Conv1d per filter size, ReLU, max-pool over time, dropout, linear.
* ``CNN2d`` — the same network as the lab's 7.4 builds it: ``nn.Conv2d(1, n_filters,
  (fs, embed))`` over the embeddings as a one-channel image, named ``convs.i`` (``nn.ModuleList``)
  or ``conv_0``, ``conv_1``, ... (the tutorial's first version).
* ``SimpleRNN`` — the lab's 7.3 RNN exactly: sequence-first input ``[T, B]``, no packing (so
  the final state of a padded row comes from its padding: run it on unpadded reviews).

``outputs=2`` gives the tutorial's newer two-logit heads (cross-entropy); ``BiLSTM(name="lstm",
concat="backward-forward")`` its newer bi-LSTM, which concatenates ``[hidden[-1], hidden[-2]]``.

Inputs are batch-first ``ids [B, T]`` plus ``lengths [B]`` for the recurrent models. FastText
and CNN pool over the padded length exactly as the tutorial does (so, like the tutorial, they
are meant to be run on unpadded reviews at prediction time).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence


class CharPredictor(nn.Module):
    def __init__(self, vocab: int, embed: int = 8, hidden: int = 128, layers: int = 1):
        super().__init__()
        self.emb = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.lin = nn.Linear(hidden, vocab)

    def forward(self, x):
        out, _ = self.lstm(self.emb(x))
        return self.lin(out[:, -1])


class RNN(nn.Module):
    """The lab's plain RNN (``cell="rnn"``) and ImprovedRNN (``cell="lstm"``)."""

    def __init__(self, vocab: int, embed: int = 50, hidden: int = 100, cell: str = "rnn", outputs: int = 1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](embed, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, outputs)

    def forward(self, text, lengths):
        packed = pack_padded_sequence(self.embedding(text), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, hidden = self.rnn(packed)
        if isinstance(hidden, tuple):
            hidden = hidden[0]
        return self.fc(hidden[-1]).squeeze(1)


class SimpleRNN(nn.Module):
    """The lab's 7.3 ``RNN``: ``text [T, B]`` sequence-first, unpacked, one logit."""

    def __init__(self, vocab: int, embed: int = 100, hidden: int = 256, outputs: int = 1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = nn.RNN(embed, hidden)
        self.fc = nn.Linear(hidden, outputs)

    def forward(self, text):
        _, hidden = self.rnn(self.embedding(text))  # hidden [1, B, H]
        return self.fc(hidden.squeeze(0))


class BiLSTM(nn.Module):
    """``pad_idx=None``: no ``padding_idx`` (the ``<pad>`` row is trained like any other)."""

    def __init__(self, vocab: int, embed: int = 50, hidden: int = 256, layers: int = 2,
                 dropout: float = 0.5, pad_idx: int | None = 1, outputs: int = 1, name: str = "rnn",
                 concat: str = "forward-backward"):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=pad_idx)
        self.name, self.concat = name, concat
        setattr(self, name, nn.LSTM(embed, hidden, num_layers=layers, bidirectional=True, dropout=dropout,
                                    batch_first=True))
        self.fc = nn.Linear(2 * hidden, outputs)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, lengths):
        embedded = self.dropout(self.embedding(text))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (hidden, _) = getattr(self, self.name)(packed)
        pair = (hidden[-2], hidden[-1]) if self.concat == "forward-backward" else (hidden[-1], hidden[-2])
        hidden = self.dropout(torch.cat(pair, dim=1))
        return self.fc(hidden).squeeze(1)


class FastText(nn.Module):
    def __init__(self, vocab: int, embed: int = 50, pad_idx: int = 1, outputs: int = 1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=pad_idx)
        self.fc = nn.Linear(embed, outputs)

    def forward(self, text, lengths=None):
        embedded = self.embedding(text)  # [B, T, E]
        pooled = F.avg_pool2d(embedded, (embedded.shape[1], 1)).squeeze(1)
        return self.fc(pooled).squeeze(1)


class CNN(nn.Module):
    def __init__(self, vocab: int, embed: int = 50, n_filters: int = 100, filter_sizes=(3, 4, 5),
                 dropout: float = 0.5, pad_idx: int = 1, outputs: int = 1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=pad_idx)
        self.convs = nn.ModuleList([nn.Conv1d(embed, n_filters, fs) for fs in filter_sizes])
        self.fc = nn.Linear(len(filter_sizes) * n_filters, outputs)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, lengths=None):
        embedded = self.embedding(text).permute(0, 2, 1)
        conved = [F.relu(conv(embedded)) for conv in self.convs]
        pooled = [F.max_pool1d(c, c.shape[2]).squeeze(2) for c in conved]
        return self.fc(self.dropout(torch.cat(pooled, dim=1))).squeeze(1)


class CNN2d(nn.Module):
    """The lab's 7.4 CNN: ``nn.Conv2d`` kernels ``[n_filters, 1, fs, embed]``; ``names="convs"``
    (``nn.ModuleList``) or ``"conv_i"`` (attributes ``conv_0``, ``conv_1``, ...)."""

    def __init__(self, vocab: int, embed: int = 50, n_filters: int = 100, filter_sizes=(3, 4, 5),
                 dropout: float = 0.5, pad_idx: int = 1, names: str = "convs", outputs: int = 1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=pad_idx)
        convs = [nn.Conv2d(in_channels=1, out_channels=n_filters, kernel_size=(fs, embed)) for fs in filter_sizes]
        if names == "convs":
            self.convs = nn.ModuleList(convs)
        else:
            for i, conv in enumerate(convs):
                setattr(self, f"conv_{i}", conv)
        self.n_convs, self.names = len(convs), names
        self.fc = nn.Linear(len(filter_sizes) * n_filters, outputs)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, lengths=None):
        embedded = self.embedding(text).unsqueeze(1)  # [B, 1, T, E]
        convs = self.convs if self.names == "convs" else [getattr(self, f"conv_{i}") for i in range(self.n_convs)]
        conved = [F.relu(conv(embedded)).squeeze(3) for conv in convs]  # [B, n_filters, T - fs + 1]
        pooled = [F.max_pool1d(c, c.shape[2]).squeeze(2) for c in conved]
        return self.fc(self.dropout(torch.cat(pooled, dim=1))).squeeze(1)


def build(name: str, vocab: int, **kw) -> nn.Module:
    """A reference model by seqjax name: charlm, rnn, lstm, bilstm, fasttext, cnn (Conv1d),
    cnn2d (the lab's Conv2d)."""
    if name == "charlm":
        return CharPredictor(vocab, **kw)
    if name in ("rnn", "lstm"):
        return RNN(vocab, cell=kw.pop("cell", name), **kw)
    return {"bilstm": BiLSTM, "fasttext": FastText, "cnn": CNN, "cnn2d": CNN2d}[name](vocab, **kw)
