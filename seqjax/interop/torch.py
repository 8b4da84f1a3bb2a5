"""PyTorch ``state_dict`` <-> seqjax params for the lab's models (torch itself is optional).

``from_torch(model, state_dict)`` accepts tensors or arrays, keyed as the lab's modules name
them (see ``experiments/reference/models.py``), and returns ``{"params": ...}`` for the
seqjax model of the same name (``charlm``, ``rnn``, ``lstm``, ``bilstm``, ``fasttext``,
``cnn``). Recurrent weights copy unchanged (seqjax keeps PyTorch's layout); linear weights are
transposed; Conv1d ``[out, in, k]`` becomes flax's ``[k, in, out]``. A missing, unexpected or
mis-shaped key raises :class:`SeqjaxError` naming it. ``to_torch`` is the inverse.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from seqjax import SeqjaxError

_RNN = re.compile(r"^(?:lstm|rnn)\.((?:weight|bias)_(?:ih|hh)_l\d+(?:_reverse)?)$")


def _np(v) -> np.ndarray:
    """A float32 *copy*: ``tensor.numpy()`` shares memory, and an optimizer step would change it."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.array(v, np.float32, copy=True)


def _rule(model: str, key: str):
    """``key`` -> (flax path, transform kind) or None if the model has no such key."""
    emb = "emb" if model == "charlm" else "embedding"
    if key == f"{emb}.weight":
        return (emb, "embedding"), "copy"
    m = _RNN.match(key)
    if m and model in ("charlm", "rnn", "lstm", "bilstm"):
        return ("rnn", m[1]), "copy"
    head = "lin" if model == "charlm" else "fc"
    if key == f"{head}.weight":
        return (head, "kernel"), "linear"
    if key == f"{head}.bias":
        return (head, "bias"), "copy"
    m = re.match(r"^convs\.(\d+)\.(weight|bias)$", key)
    if m and model == "cnn":
        return (f"conv#{m[1]}", "kernel" if m[2] == "weight" else "bias"), "conv" if m[2] == "weight" else "copy"
    return None


def from_torch(model: str, state_dict: Mapping[str, Any], template: Mapping | None = None) -> dict:
    """Convert a PyTorch ``state_dict`` of the lab's ``model`` into seqjax params.

    Args:
      template: optional seqjax params (``{"params": ...}``) to check keys and shapes against;
        CNN conv layers are named by width there (``conv3``...), else in order ``conv#i``.
    """
    params: dict = {}
    for key, value in state_dict.items():
        rule = _rule(model, key)
        if rule is None:
            raise SeqjaxError(f"unexpected key {key!r} in the {model} state_dict; is it the lab's {model} model?")
        (mod, name), kind = rule
        v = _np(value)
        if kind == "linear":
            v = v.T
        elif kind == "conv":
            v = v.transpose(2, 1, 0)
        params.setdefault(mod, {})[name] = v
    if model == "cnn":  # conv#i -> conv<width>, width read from the kernel
        for k in sorted(k for k in params if k.startswith("conv#")):
            p = params.pop(k)
            params[f"conv{p['kernel'].shape[0]}"] = p
    if template is not None:
        _check(params, template["params"], model)
    return {"params": params}


def _check(got: dict, want: Mapping, model: str) -> None:
    for mod, sub in want.items():
        for name, arr in sub.items():
            if mod not in got or name not in got[mod]:
                raise SeqjaxError(f"missing key for {mod}/{name} in the {model} state_dict")
            if tuple(got[mod][name].shape) != tuple(arr.shape):
                raise SeqjaxError(f"{mod}/{name}: shape {tuple(got[mod][name].shape)} from the "
                                  f"state_dict, expected {tuple(arr.shape)}")
    for mod, sub in got.items():
        for name in sub:
            if mod not in want or name not in want[mod]:
                raise SeqjaxError(f"unexpected parameter {mod}/{name} for the seqjax {model} model")


def to_torch(model: str, params: Mapping) -> dict:
    """The inverse of :func:`from_torch`: seqjax params -> a ``state_dict`` of numpy arrays."""
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
        out[f"convs.{i}.weight"] = np.asarray(p[k]["kernel"]).transpose(2, 1, 0)
        out[f"convs.{i}.bias"] = np.asarray(p[k]["bias"])
    out[f"{head}.weight"] = np.asarray(p[head]["kernel"]).T
    out[f"{head}.bias"] = np.asarray(p[head]["bias"])
    return out
