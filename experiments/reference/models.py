"""The lab's PyTorch models, as the lab and the tutorial it follows define them (torch optional).

* ``CharPredictor`` — embedding 8 -> LSTM 128 (1 or 2 layers) -> linear, last timestep.
* ``RNN`` / ``ImprovedRNN`` — embedding -> nn.RNN / nn.LSTM over packed sequences -> linear.
* ``BiLSTM`` — the tutorial's 2-layer bidirectional packed LSTM with dropout.
* ``FastText`` — embeddings averaged with ``avg_pool2d`` over the (padded) length -> linear.
* ``CNN`` — Kim (2014): Conv1d per filter size, ReLU, max-pool over time, dropout, linear.

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

    def __init__(self, vocab: int, embed: int = 50, hidden: int = 100, cell: str = "rnn"):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](embed, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, text, lengths):
        packed = pack_padded_sequence(self.embedding(text), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, hidden = self.rnn(packed)
        if isinstance(hidden, tuple):
            hidden = hidden[0]
        return self.fc(hidden[-1]).squeeze(1)


class BiLSTM(nn.Module):
    def __init__(self, vocab: int, embed: int = 50, hidden: int = 256, layers: int = 2,
                 dropout: float = 0.5, pad_idx: int = 1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=pad_idx)
        self.rnn = nn.LSTM(embed, hidden, num_layers=layers, bidirectional=True, dropout=dropout,
                           batch_first=True)
        self.fc = nn.Linear(2 * hidden, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, lengths):
        embedded = self.dropout(self.embedding(text))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (hidden, _) = self.rnn(packed)
        hidden = self.dropout(torch.cat((hidden[-2], hidden[-1]), dim=1))
        return self.fc(hidden).squeeze(1)


class FastText(nn.Module):
    def __init__(self, vocab: int, embed: int = 50, pad_idx: int = 1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=pad_idx)
        self.fc = nn.Linear(embed, 1)

    def forward(self, text, lengths=None):
        embedded = self.embedding(text)  # [B, T, E]
        pooled = F.avg_pool2d(embedded, (embedded.shape[1], 1)).squeeze(1)
        return self.fc(pooled).squeeze(1)


class CNN(nn.Module):
    def __init__(self, vocab: int, embed: int = 50, n_filters: int = 100, filter_sizes=(3, 4, 5),
                 dropout: float = 0.5, pad_idx: int = 1):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=pad_idx)
        self.convs = nn.ModuleList([nn.Conv1d(embed, n_filters, fs) for fs in filter_sizes])
        self.fc = nn.Linear(len(filter_sizes) * n_filters, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, lengths=None):
        embedded = self.embedding(text).permute(0, 2, 1)
        conved = [F.relu(conv(embedded)) for conv in self.convs]
        pooled = [F.max_pool1d(c, c.shape[2]).squeeze(2) for c in conved]
        return self.fc(self.dropout(torch.cat(pooled, dim=1))).squeeze(1)


def build(name: str, vocab: int, **kw) -> nn.Module:
    """A reference model by seqjax name: charlm, rnn, lstm, bilstm, fasttext, cnn."""
    if name == "charlm":
        return CharPredictor(vocab, **kw)
    if name in ("rnn", "lstm"):
        return RNN(vocab, cell=kw.pop("cell", name), **kw)
    return {"bilstm": BiLSTM, "fasttext": FastText, "cnn": CNN}[name](vocab, **kw)
