"""PyTorch ``state_dict`` <-> seqjax params for the lab's models (torch itself is optional).

``from_torch(model, state_dict)`` accepts tensors or arrays, keyed as the lab's modules and the
tutorial it follows name them, and returns ``{"params": ...}`` for the seqjax model of the same
name (``charlm``, ``rnn``, ``lstm``, ``bilstm``, ``fasttext``, ``cnn``). Accepted layouts:

* embedding ``embedding.weight [vocab, embed]`` (``emb.weight`` for ``charlm``), with or
  without ``padding_idx`` (seqjax masks padding, so the ``<pad>`` row never reaches an output);
* recurrences ``rnn.`` / ``lstm.`` / ``gru.`` + ``{weight,bias}_{ih,hh}_l<k>[_reverse]``, copied
  unchanged (seqjax keeps PyTorch's layout); the cell is read from the shapes (``weight_hh``
  is ``[G·hidden, hidden]``, G = 1 RNN, 3 GRU, 4 LSTM), so are hidden size and depth;
* Kim CNN convolutions named ``convs.<i>`` (``nn.ModuleList``) or ``conv_<i>`` (one attribute
  per width), ``nn.Conv1d`` ``[n_filters, embed, width]`` or the lab's ``nn.Conv2d``
  ``[n_filters, 1, width, embed]``, both becoming flax's ``[width, embed, n_filters]``;
* head ``fc`` (``lin`` for ``charlm``): one logit, as the lab (BCE-with-logits), or two (the
  tutorial's newer cross-entropy version): then seqjax's one logit is ``z1 - z0``, so
  ``sigmoid`` of it is PyTorch's ``softmax(z)[1]`` exactly, taking class 1 as *positive*; or
  ``C > 2`` logits (a classifier of ``C`` classes), kept as they are.
  A bi-LSTM's head reads ``[forward, backward]`` final states (the lab); the tutorial's newer
  version concatenates ``[backward, forward]``: pass ``concat="backward-forward"``.

Anything else is refused with one line naming the key and the shape expected there.
:func:`torch_arch` reads the hyperparameters (vocab, embed, hidden, layers, cell, filter
widths, ...) off the shapes; :func:`load_state_dict`, :func:`read_tokens`, :func:`read_chars`
and :func:`seqjax_vocab` read a PyTorch run's files for ``seqjax <part> import-torch``.
``to_torch`` is the inverse of ``from_torch`` (Conv1d or Conv2d, ``convs.i`` or ``conv_i``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seqjax import SeqjaxError
from seqjax.data.vocab import PAD, UNK, Vocab

MODELS = ("charlm", "rnn", "lstm", "bilstm", "fasttext", "cnn")


def torch_cells() -> dict[int, str]:
    """Gate count -> seqjax cell, for the ``torch.nn`` modules whose layout a registered cell
    shares (:attr:`seqjax.nn.cells.CellDef.torch`: nn.RNN with tanh as the lab's, nn.GRU,
    nn.LSTM). A PyTorch state dict comes from one of these, so its gate count names the cell."""
    from seqjax.nn.cells import CELLS

    return {c.gates: c.name for c in CELLS.values() if c.torch}

CONCATS = ("forward-backward", "backward-forward")
_RNN = re.compile(r"^(lstm|rnn|gru)\.((?:weight|bias)_(?:ih|hh)_l(\d+)(_reverse)?)$")
_CONV = re.compile(r"^(convs\.|conv_)(\d+)\.(weight|bias)$")


def _np(v) -> np.ndarray:
    """A float32 *copy*: ``tensor.numpy()`` shares memory, and an optimizer step would change it."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.array(v, np.float32, copy=True)


def _shape(sd: Mapping, key: str) -> tuple:
    return tuple(np.shape(sd[key]))


def _fmt(shape) -> str:
    """``(4, 1, *, 6)``; ``(4,)`` for one axis, as Python prints a tuple."""
    items = [str(s) for s in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _expect(sd: Mapping, key: str, shape: tuple, meaning: str = "") -> None:
    """Raise unless ``sd[key]`` exists with ``shape`` (``None`` entries match any size)."""
    what = f" = {meaning}" if meaning else ""
    want = _fmt("*" if s is None else s for s in shape)
    if key not in sd:
        raise SeqjaxError(f"missing key {key!r}: expected a tensor of shape {want}{what}")
    got = _shape(sd, key)
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
        raise SeqjaxError(f"{key}: shape {_fmt(got)}, expected {want}{what}")


def _arch(model: str, sd: Mapping) -> tuple[dict, dict]:
    """``(arch, expected)``: hyperparameters read off the anchor keys, and every key the layout
    must have with its shape. Raises SeqjaxError on the first key that does not fit."""
    if model not in MODELS:
        raise SeqjaxError(f"model {model!r}: choose one of {', '.join(MODELS)}")
    emb, head = ("emb", "lin") if model == "charlm" else ("embedding", "fc")
    _expect(sd, f"{emb}.weight", (None, None), "[vocab, embed]")
    vocab, embed = _shape(sd, f"{emb}.weight")
    arch: dict[str, Any] = {"vocab": vocab, "embed": embed}
    expected = {f"{emb}.weight": ((vocab, embed), "[vocab, embed]")}
    feats = embed
    if model in ("charlm", "rnn", "lstm", "bilstm"):
        found = {}
        for k in sd:
            m = _RNN.match(k)
            if m:
                found.setdefault(m[1], []).append(m)
        if len(found) > 1:
            raise SeqjaxError(f"recurrent weights under several names ({', '.join(sorted(found))}); "
                              f"expected one nn.LSTM / nn.GRU / nn.RNN module")
        prefix = next(iter(found), "lstm" if model == "charlm" else "rnn")
        _expect(sd, f"{prefix}.weight_hh_l0", (None, None), "[gates x hidden, hidden]")
        gh, hidden = _shape(sd, f"{prefix}.weight_hh_l0")
        if gh % max(hidden, 1) or gh // hidden not in torch_cells():
            raise SeqjaxError(f"{prefix}.weight_hh_l0: shape {_fmt((gh, hidden))}, expected (G*{hidden}, "
                              f"{hidden}) with G = 1 (nn.RNN), 3 (nn.GRU) or 4 (nn.LSTM)")
        G = gh // hidden
        layers = 1 + max(int(m[3]) for m in found.get(prefix, [])) if found else 1
        bidir = any(m[4] for m in found.get(prefix, []))
        dirs = ("", "_reverse") if bidir else ("",)
        if model in ("rnn", "lstm") and (layers > 1 or bidir):
            extra = next(m[0] for m in found[prefix] if m[4] or m[3] != "0")
            raise SeqjaxError(f"unexpected key {extra!r}: seqjax's {model} model is one layer in one "
                              f"direction ({prefix}.*_l0 only); a bidirectional LSTM imports as bilstm")
        if model == "bilstm" and not bidir:
            raise SeqjaxError(f"missing key '{prefix}.weight_ih_l0_reverse': expected a tensor of shape "
                              f"({gh}, {embed}); bilstm is bidirectional (one direction imports as lstm)")
        if model == "charlm" and bidir:
            raise SeqjaxError(f"unexpected key '{prefix}.weight_ih_l0_reverse': the char model runs "
                              f"one direction")
        for layer in range(layers):
            inp = embed if layer == 0 else hidden * len(dirs)
            for d in dirs:
                s = f"_l{layer}{d}"
                expected[f"{prefix}.weight_ih{s}"] = ((gh, inp), f"[{G} x hidden, input]")
                expected[f"{prefix}.weight_hh{s}"] = ((gh, hidden), f"[{G} x hidden, hidden]")
                expected[f"{prefix}.bias_ih{s}"] = ((gh,), f"[{G} x hidden]")
                expected[f"{prefix}.bias_hh{s}"] = ((gh,), f"[{G} x hidden]")
        arch.update(hidden=hidden, layers=layers, cell=torch_cells()[G], rnn_prefix=prefix)
        feats = hidden * len(dirs)
    elif model == "cnn":
        convs = {}
        for k in sd:
            m = _CONV.match(k)
            if m:
                convs.setdefault(m[1], set()).add(int(m[2]))
        if len(convs) > 1:
            raise SeqjaxError("convolutions under both names 'convs.<i>' and 'conv_<i>'; expected one of them")
        names = next(iter(convs), "convs.")
        idx = sorted(convs.get(names, {0}))
        both = "[n_filters, embed, width] (Conv1d) or [n_filters, 1, width, embed] (Conv2d)"
        if f"{names}0.weight" not in sd or len(_shape(sd, f"{names}0.weight")) not in (3, 4):
            _expect(sd, f"{names}0.weight", (None, embed, None), both)
        w0 = _shape(sd, f"{names}0.weight")
        conv2d, n_filters = len(w0) == 4, w0[0]
        widths = []
        for i in range(max(idx) + 1):
            key = f"{names}{i}.weight"
            if conv2d:
                _expect(sd, key, (n_filters, 1, None, embed), "[n_filters, 1, width, embed] (Conv2d)")
                width = _shape(sd, key)[2]
            else:
                _expect(sd, key, (n_filters, embed, None), "[n_filters, embed, width] (Conv1d)")
                width = _shape(sd, key)[2]
            if width in widths:
                raise SeqjaxError(f"{key}: width {width} again (also {names}{widths.index(width)}); seqjax's "
                                  f"CNN has one convolution per width")
            widths.append(width)
            expected[key] = ((n_filters, 1, width, embed) if conv2d else (n_filters, embed, width),
                             "[n_filters, 1, width, embed] (Conv2d)" if conv2d else "[n_filters, embed, width] (Conv1d)")
            expected[f"{names}{i}.bias"] = ((n_filters,), "[n_filters]")
        arch.update(filters=tuple(widths), n_filters=n_filters, conv="conv2d" if conv2d else "conv1d",
                    conv_names=names)
        feats = n_filters * len(widths)
    if model == "charlm":
        _expect(sd, "lin.weight", (vocab, feats), "[vocab, hidden]")
        outputs = vocab
    else:
        _expect(sd, "fc.weight", (None, feats), "[outputs, features]")
        outputs = _shape(sd, "fc.weight")[0]
        if outputs < 1:
            raise SeqjaxError(f"fc.weight: shape {_fmt((outputs, feats))}, expected (1, {feats}) (one logit, "
                              f"BCE), (2, {feats}) (negative/positive, cross-entropy) or (C, {feats}) (C classes)")
    expected[f"{head}.weight"] = ((outputs, feats), "[outputs, features]")
    expected[f"{head}.bias"] = ((outputs,), "[outputs]")
    arch["outputs"] = outputs
    for key, (shape, meaning) in expected.items():
        _expect(sd, key, shape, meaning)
    for key in sd:
        if key not in expected:
            raise SeqjaxError(f"unexpected key {key!r} for the {model} model, whose state_dict "
                              f"holds {_summary(expected)}")
    return arch, expected


def _summary(expected: dict) -> str:
    keys = list(expected)
    return ", ".join(keys) if len(keys) <= 6 else ", ".join(keys[:3]) + f", ... ({len(keys)} keys)"


def _hinted(model: str, sd: Mapping, err: SeqjaxError) -> SeqjaxError:
    """``err`` plus the models these weights do fit, if any."""
    fits = []
    for other in MODELS:
        if other != model:
            try:
                _arch(other, sd)
                fits.append(other)
            except SeqjaxError:
                pass
    hint = f" (these weights fit the {' / '.join(fits)} model)" if fits else ""
    return SeqjaxError(f"{err}{hint}")


def torch_arch(model: str, state_dict: Mapping[str, Any]) -> dict:
    """The hyperparameters of a lab ``model`` read off its ``state_dict``'s shapes.

    Returns a dict with ``vocab``, ``embed``, ``outputs`` (1 or 2; ``vocab`` for charlm) and,
    for recurrent models, ``hidden``, ``layers``, ``cell`` (rnn | gru | lstm); for the CNN,
    ``filters`` (widths in the order of the PyTorch convolutions), ``n_filters``, ``conv``
    (conv1d | conv2d). Raises SeqjaxError naming the first key that does not fit ``model``.
    """
    try:
        return _arch(model, state_dict)[0]
    except SeqjaxError as err:
        raise _hinted(model, state_dict, err) from None


def from_torch(model: str, state_dict: Mapping[str, Any], template: Mapping | None = None,
               concat: str = "forward-backward") -> dict:
    """Convert a PyTorch ``state_dict`` of the lab's ``model`` into seqjax params.

    Args:
      model: one of ``MODELS``.
      state_dict: key -> tensor or array, in one of the layouts of the module docstring.
      template: optional seqjax params (``{"params": ...}``) to check keys and shapes against.
      concat: bilstm only — the order in which the PyTorch model concatenates the final
        states before ``fc``: ``forward-backward`` (``cat(hidden[-2], hidden[-1])``, the lab)
        or ``backward-forward`` (``cat(hidden[-1], hidden[-2])``, the tutorial's newer version).
    Returns:
      ``{"params": {...}}`` of float32 numpy arrays; CNN convolutions are named by width
      (``conv3``, ``conv4``, ...), and the widths in PyTorch's order are the model's ``filters``.
    """
    if concat not in CONCATS:
        raise SeqjaxError(f"--concat {concat!r}: choose {' or '.join(CONCATS)}")
    arch = torch_arch(model, state_dict)
    sd = {k: _np(v) for k, v in state_dict.items()}
    emb, head = ("emb", "lin") if model == "charlm" else ("embedding", "fc")
    params: dict = {emb: {"embedding": sd[f"{emb}.weight"]}}
    if "rnn_prefix" in arch:
        n = len(arch["rnn_prefix"]) + 1
        params["rnn"] = {k[n:]: v for k, v in sd.items() if k.startswith(arch["rnn_prefix"] + ".")}
    if model == "cnn":
        names = arch["conv_names"]
        for i, width in enumerate(arch["filters"]):
            w = sd[f"{names}{i}.weight"]
            kernel = w[:, 0].transpose(1, 2, 0) if arch["conv"] == "conv2d" else w.transpose(2, 1, 0)
            params[f"conv{width}"] = {"kernel": kernel, "bias": sd[f"{names}{i}.bias"]}  # [width, embed, n_filters]
    w, b = sd[f"{head}.weight"], sd[f"{head}.bias"]
    if model == "bilstm" and concat == "backward-forward":
        h = arch["hidden"]
        w = np.concatenate([w[:, h:], w[:, :h]], axis=1)
    if model != "charlm" and arch["outputs"] == 2:  # sigmoid(z1 - z0) = softmax(z)[1]
        w, b = w[1:] - w[:1], b[1:] - b[:1]
    params[head] = {"kernel": np.ascontiguousarray(w.T), "bias": b}
    if template is not None:
        check(params, template["params"], model)
    return {"params": params}


def check(got: Mapping, want: Mapping, model: str) -> None:
    """Raise SeqjaxError unless params ``got`` have exactly the modules, names and shapes of ``want``."""
    for mod, sub in want.items():
        for name, arr in sub.items():
            if mod not in got or name not in got[mod]:
                raise SeqjaxError(f"missing key for {mod}/{name} in the {model} state_dict")
            if tuple(np.shape(got[mod][name])) != tuple(np.shape(arr)):
                raise SeqjaxError(f"{mod}/{name}: shape {tuple(np.shape(got[mod][name]))} from the "
                                  f"state_dict, expected {tuple(np.shape(arr))}")
    for mod, sub in got.items():
        for name in sub:
            if mod not in want or name not in want[mod]:
                raise SeqjaxError(f"unexpected parameter {mod}/{name} for the seqjax {model} model")


def to_torch(model: str, params: Mapping, conv: str = "conv1d", conv_names: str = "convs.") -> dict:
    """The inverse of :func:`from_torch`: seqjax params -> a ``state_dict`` of numpy arrays.

    The head comes out with one logit; ``conv`` (conv1d | conv2d) and ``conv_names``
    (``convs.`` | ``conv_``) choose the CNN layout. The CNN's convolutions come out in
    increasing width (seqjax's params do not record the model's ``filters`` order).
    """
    p = params["params"]
    out = {}
    emb = "emb" if model == "charlm" else "embedding"
    head = "lin" if model == "charlm" else "fc"
    out[f"{emb}.weight"] = np.asarray(p[emb]["embedding"])
    rnn_name = "lstm" if model == "charlm" else "rnn"
    for name, v in p.get("rnn", {}).items():
        out[f"{rnn_name}.{name}"] = np.asarray(v)
    convs = sorted((k for k in p if k.startswith("conv")), key=lambda k: int(k[4:]))
    for i, k in enumerate(convs):
        kernel = np.asarray(p[k]["kernel"])  # [width, embed, n_filters]
        out[f"{conv_names}{i}.weight"] = (kernel.transpose(2, 0, 1)[:, None] if conv == "conv2d"
                                          else kernel.transpose(2, 1, 0))
        out[f"{conv_names}{i}.bias"] = np.asarray(p[k]["bias"])
    out[f"{head}.weight"] = np.asarray(p[head]["kernel"]).T
    out[f"{head}.bias"] = np.asarray(p[head]["bias"])
    return out


# ---- a PyTorch run's files -------------------------------------------------------------------
def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """``torch.save(model.state_dict(), path)`` -> key -> float32 array (CPU; tensors only).

    A checkpoint dict holding the state_dict under ``state_dict`` / ``model_state_dict`` /
    ``model`` is accepted too. Needs torch; loads with ``weights_only=True`` (no code runs).
    A tensor holding NaN or inf is refused (:class:`SeqjaxError` naming the key).
    """
    path = Path(path)
    if not path.is_file():
        raise SeqjaxError(f"--state-dict {path}: no such file; save one with "
                          f"torch.save(model.state_dict(), '{path.name}')")
    try:
        import torch
    except ImportError:
        raise SeqjaxError("reading a PyTorch state_dict needs torch: pip install 'seqjax[torch]'") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and unpickler errors alike
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()] or [type(err).__name__]
        # torch's weights-only refusal opens with a paragraph on torch.load's defaults; the cause follows it
        cause = next((lines[i + 1] for i, ln in enumerate(lines[:-1]) if ln.endswith("WeightsUnpickler error:")),
                     lines[0].split(". ")[0])
        raise SeqjaxError(f"--state-dict {path}: torch.load cannot read it as a state_dict ({cause[:200]}); "
                          f"save the weights with torch.save(model.state_dict(), ...)") from None
    if isinstance(obj, Mapping) and not any(hasattr(v, "shape") for v in obj.values()):
        inner = [k for k in ("state_dict", "model_state_dict", "model") if isinstance(obj.get(k), Mapping)]
        obj = obj[inner[0]] if inner else obj
    if not isinstance(obj, Mapping) or not obj or not all(hasattr(v, "shape") for v in obj.values()):
        what = f"keys {', '.join(map(str, list(obj)[:5]))}" if isinstance(obj, Mapping) else type(obj).__name__
        raise SeqjaxError(f"--state-dict {path}: holds {what}, not a state_dict of tensors; save the "
                          f"weights with torch.save(model.state_dict(), ...)")
    arrays = {str(k): _np(v) for k, v in obj.items()}
    for k, v in arrays.items():  # NaN or inf weights would import and predict NaN
        if np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all():
            n = int((~np.isfinite(v)).sum())
            raise SeqjaxError(f"--state-dict {path}: {k!r} holds {n} non-finite value(s) (NaN or inf) of "
                              f"{v.size}; save the weights of a model that trained without diverging")
    return arrays


def _read(path: Path, flag: str) -> str:
    if not path.is_file():
        raise SeqjaxError(f"{flag} {path}: no such file; write the PyTorch run's index -> token list "
                          f"with json.dump(itos, open('{path.name}', 'w'))")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SeqjaxError(f"{flag} {path}: cannot read it as UTF-8 text ({err})") from None


def _json(path: Path, flag: str, text: str):
    try:
        return json.loads(text)
    except ValueError as err:
        raise SeqjaxError(f"{flag} {path}: not valid JSON ({err})") from None


def read_tokens(path: str | Path, flag: str = "--vocab") -> list[str]:
    """A PyTorch run's index -> token list (torchtext's ``TEXT.vocab.itos`` / ``vocab.get_itos()``).

    ``.json``: a list of tokens, ``{"itos": [...]}`` (also seqjax's vocab file) or a
    token -> index dict (``stoi``); ``.txt``: one token per line (a token may hold spaces).
    """
    path = Path(path)
    text = _read(path, flag)
    if path.suffix == ".json":
        obj = _json(path, flag, text)
        if isinstance(obj, dict) and "itos" in obj:
            obj = obj["itos"]
        if isinstance(obj, dict):  # stoi
            idx = sorted(obj.values()) if all(isinstance(v, int) for v in obj.values()) else None
            if idx != list(range(len(obj))):
                raise SeqjaxError(f"{flag} {path}: a token -> index dict must map to 0..{len(obj) - 1} once each")
            itos = [""] * len(obj)
            for tok, i in obj.items():
                itos[i] = tok
            obj = itos
        if not isinstance(obj, list) or not all(isinstance(t, str) for t in obj):
            raise SeqjaxError(f"{flag} {path}: expected a JSON list of tokens (itos), {{\"itos\": [...]}} "
                              f"or a token -> index dict")
        itos = obj
    elif path.suffix == ".txt":
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        itos = [t[:-1] if t.endswith("\r") else t for t in lines]
    else:
        raise SeqjaxError(f"{flag} {path}: give a .json (list of tokens) or .txt (one token per line) file")
    seen: dict[str, int] = {}
    for i, t in enumerate(itos):
        if t in seen:
            raise SeqjaxError(f"{flag} {path}: token {t!r} appears twice (index {seen[t]} and {i})")
        seen[t] = i
    if not itos:
        raise SeqjaxError(f"{flag} {path}: no tokens in it")
    return itos


def read_chars(path: str | Path, flag: str = "--vocab") -> str:
    """The char model's index -> character list (the lab's ``chars = sorted(set(text))``).

    ``.json``: a list of 1-char strings, a string, or ``{"chars": "..."}`` (seqjax's);
    ``.txt``: the characters themselves, the whole file, newlines included.
    """
    path = Path(path)
    text = _read(path, flag)
    if path.suffix == ".json":
        obj = _json(path, flag, text)
        obj = obj.get("chars") if isinstance(obj, dict) else obj
        if isinstance(obj, list) and all(isinstance(c, str) and len(c) == 1 for c in obj):
            obj = "".join(obj)
        if not isinstance(obj, str):
            raise SeqjaxError(f"{flag} {path}: expected a JSON list of single characters (the lab's chars)")
        chars = obj
    elif path.suffix == ".txt":
        chars = text
    else:
        raise SeqjaxError(f"{flag} {path}: give a .json (list of characters) or .txt (the characters) file")
    dup = next((c for i, c in enumerate(chars) if c in chars[:i]), None)
    if dup is not None:
        raise SeqjaxError(f"{flag} {path}: character {dup!r} appears twice")
    if not chars:
        raise SeqjaxError(f"{flag} {path}: no characters in it")
    return chars


def seqjax_vocab(itos: list[str], embedding: np.ndarray, where: str = "--vocab") -> tuple[Vocab, np.ndarray, list[str]]:
    """Reorder a PyTorch vocabulary and its embedding rows to seqjax's: ``<unk>`` 0, ``<pad>`` 1.

    Args:
      itos: the PyTorch run's index -> token list (``len(itos) == embedding.shape[0]``).
      embedding: ``float32[len(itos), embed]``.
    Returns:
      ``(vocab, embedding float32[len(vocab), embed], notes)``. A special the PyTorch vocab
      lacks gets a zero row (``<pad>`` rows never reach an output; ``<unk>`` then stands for
      tokens the PyTorch model could not read at all). ``notes``: lines worth printing.
    """
    if len(itos) != embedding.shape[0]:
        raise SeqjaxError(f"{where}: {len(itos):,} tokens, but the state_dict's embedding has "
                          f"{embedding.shape[0]:,} rows; give the vocabulary the model was trained with")
    index = {t: i for i, t in enumerate(itos)}
    zero = np.zeros((1, embedding.shape[1]), np.float32)
    rows = [embedding[index[s]][None] if s in index else zero for s in (UNK, PAD)]
    rest = [i for i, t in enumerate(itos) if t not in (UNK, PAD)]
    emb = np.concatenate(rows + [embedding[rest]], axis=0).astype(np.float32)
    notes = [f"the vocabulary has no {s}; it gets a zero embedding row" for s in (UNK, PAD) if s not in index]
    cased = sum(t != t.lower() for t in itos)
    if cased:
        notes.append(f"{cased:,} tokens have capitals (e.g. {next(t for t in itos if t != t.lower())!r}); "
                     f"seqjax's tokenizers lowercase, so those are never looked up")
    return Vocab([UNK, PAD] + [itos[i] for i in rest], [0] * (2 + len(rest))), emb, notes
