"""PyTorch parity: the lab's PyTorch models' weights imported into seqjax give the same logits
(to 1e-5) in every layout the lab and its tutorial publish, one SGD step gives the same updated
weights (to 1e-5), so do five Adam and RMSprop steps (with and without gradient clipping), and any
other layout is refused with one line naming the key and its shape."""

import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import torch  # noqa: E402  CI installs torch==2.13.0 (the `torch` extra); a missing torch fails here
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiments.reference import models as ref  # noqa: E402

from seqjax import SeqjaxError  # noqa: E402
from seqjax.interop.torch import from_torch, to_torch, torch_arch  # noqa: E402
from seqjax.nn.charlm import CharLM, lm_loss  # noqa: E402
from seqjax.nn.classifiers import TextClassifier, bce_loss  # noqa: E402
from seqjax.train.state import make_optimizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("highest_precision")  # parity to 1e-5, in this file only
V, E = 40, 6
CLASSIFIERS = {
    "rnn": (dict(embed=E, hidden=7), dict(embed=E, cell="rnn", hidden=7)),
    "lstm": (dict(embed=E, hidden=7), dict(embed=E, cell="lstm", hidden=7)),
    "bilstm": (dict(embed=E, hidden=5, layers=2, dropout=0.5), dict(embed=E, cell="lstm", hidden=5, layers=2, dropout=0.5)),
    "fasttext": (dict(embed=E), dict(embed=E)),
    "cnn": (dict(embed=E, n_filters=4), dict(embed=E, n_filters=4)),
}


def _torch_model(name, kw):
    torch.manual_seed(0)
    m = ref.build(name, V, **kw)
    m.eval()
    return m


def _ours(name, kw):
    return TextClassifier(V, encoder=name, **kw)


def _batch(rng, lengths, T=None):
    T = T or max(lengths)
    ids = np.ones((len(lengths), T), np.int64)  # <pad> = 1
    for i, L in enumerate(lengths):
        ids[i, :L] = rng.integers(2, V, L)
    return ids, np.array(lengths, np.int64)


# layout id -> (seqjax model, PyTorch module factory, how PyTorch reads the batch, from_torch concat)
# "packed": the padded ragged batch with lengths; "alone": each review unpadded (the tutorial's
# FastText / CNN pool over the padded length, the lab's 7.3 RNN does not pack); "seq_first": alone,
# as a [T, 1] column.
LAYOUTS = {
    "rnn": ("rnn", lambda: ref.RNN(V, E, 7, "rnn"), "packed", None),
    "lstm": ("lstm", lambda: ref.RNN(V, E, 7, "lstm"), "packed", None),
    "gru": ("rnn", lambda: ref.RNN(V, E, 7, "gru"), "packed", None),
    "lab_7.3_rnn_seq_first": ("rnn", lambda: ref.SimpleRNN(V, E, 7), "seq_first", None),
    "lstm_two_logits": ("lstm", lambda: ref.RNN(V, E, 7, "lstm", outputs=2), "packed", None),
    "bilstm_padding_idx": ("bilstm", lambda: ref.BiLSTM(V, E, 5, 2, 0.5, pad_idx=1), "packed", None),
    "bilstm_no_padding_idx": ("bilstm", lambda: ref.BiLSTM(V, E, 5, 2, 0.5, pad_idx=None), "packed", None),
    "bilstm_3_layers": ("bilstm", lambda: ref.BiLSTM(V, E, 4, 3, 0.0), "packed", None),
    "bilstm_tutorial_new": ("bilstm", lambda: ref.BiLSTM(V, E, 5, 2, 0.5, pad_idx=1, outputs=2, name="lstm",
                                                         concat="backward-forward"), "packed", "backward-forward"),
    "fasttext": ("fasttext", lambda: ref.FastText(V, E), "alone", None),
    "fasttext_two_logits": ("fasttext", lambda: ref.FastText(V, E, outputs=2), "alone", None),
    "cnn_conv1d": ("cnn", lambda: ref.CNN(V, E, 4), "alone", None),
    "cnn_conv1d_two_logits": ("cnn", lambda: ref.CNN(V, E, 4, (2, 4), outputs=2), "alone", None),
    "cnn_conv2d_convs": ("cnn", lambda: ref.CNN2d(V, E, 4, names="convs"), "alone", None),
    "cnn_conv2d_conv_i": ("cnn", lambda: ref.CNN2d(V, E, 4, names="conv_i"), "alone", None),
    "cnn_conv2d_widths_5_2_3": ("cnn", lambda: ref.CNN2d(V, E, 3, (5, 2, 3), names="conv_i"), "alone", None),
}


def seqjax_model(name, arch):
    """The seqjax classifier of the architecture ``torch_arch`` read."""
    kw = dict(filters=arch["filters"], n_filters=arch["n_filters"]) if name == "cnn" else {}
    return TextClassifier(arch["vocab"], arch["embed"], name, arch.get("cell", "lstm"), arch.get("hidden", 0),
                          arch.get("layers", 1), **kw)


def torch_logits(tm, ids, lengths, how, min_len=1):
    """PyTorch's logit per row of ``ids`` (``z1 - z0`` for a two-logit head)."""
    with torch.no_grad():
        if how == "packed":
            out = tm(torch.from_numpy(ids), torch.from_numpy(lengths))
        else:
            rows = []
            for i, L in enumerate(lengths):
                x = torch.from_numpy(ids[i:i + 1, :max(int(L), min_len)])
                rows.append(tm(x.T) if how == "seq_first" else tm(x))
            out = torch.cat([r.reshape(1, -1) for r in rows]).squeeze(1)
    out = out.numpy()
    return out[:, 1] - out[:, 0] if out.ndim == 2 else out


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_gives_the_same_logits(layout):
    name, factory, how, concat = LAYOUTS[layout]
    torch.manual_seed(0)
    tm = factory().eval()
    arch = torch_arch(name, tm.state_dict())
    jm = seqjax_model(name, arch)
    template = jm.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    params = from_torch(name, tm.state_dict(), template, **({"concat": concat} if concat else {}))
    ids, lengths = _batch(np.random.default_rng(1), [9, 5, 1, 7, 12, 3], T=16)
    ours = np.asarray(jm.apply(params, jnp.asarray(ids, jnp.int32), jnp.asarray(lengths, jnp.int32)))
    theirs = torch_logits(tm, ids, lengths, how, max(arch.get("filters", (1,))))
    assert np.abs(theirs).max() > 1e-3  # a test of something
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_backward_forward_concat_is_not_the_default():
    """The tutorial's newer bi-LSTM read with the lab's order gives other logits: the flag matters."""
    name, factory, how, concat = LAYOUTS["bilstm_tutorial_new"]
    torch.manual_seed(0)
    tm = factory().eval()
    arch = torch_arch(name, tm.state_dict())
    jm = seqjax_model(name, arch)
    ids, lengths = _batch(np.random.default_rng(1), [9, 5, 1, 7], T=12)
    ours = np.asarray(jm.apply(from_torch(name, tm.state_dict()), jnp.asarray(ids, jnp.int32),
                               jnp.asarray(lengths, jnp.int32)))
    assert np.abs(ours - torch_logits(tm, ids, lengths, how)).max() > 1e-3


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_one_sgd_step_matches(name):
    tkw, jkw = CLASSIFIERS[name]
    tm, jm = _torch_model(name, tkw), _ours(name, jkw)
    params = from_torch(name, tm.state_dict())
    rng = np.random.default_rng(2)
    lengths = [6, 6, 6, 6] if name in ("fasttext", "cnn") else [6, 3, 1, 5]
    ids, lens = _batch(rng, lengths)
    labels = np.array([1, 0, 1, 0], np.float32)
    opt = torch.optim.SGD(tm.parameters(), lr=0.5)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        tm(torch.from_numpy(ids), torch.from_numpy(lens)), torch.from_numpy(labels))
    opt.zero_grad()
    loss.backward()
    opt.step()
    batch = {"ids": jnp.asarray(ids, jnp.int32), "lengths": jnp.asarray(lens, jnp.int32),
             "labels": jnp.asarray(labels), "weights": jnp.ones(4)}
    ours_loss, grads = jax.value_and_grad(lambda p: bce_loss(jm)(p, batch, jax.random.PRNGKey(0), False)[0])(params)
    assert abs(float(ours_loss) - loss.item()) < 1e-5
    updated = optax.apply_updates(params, jax.tree.map(lambda g: -0.5 * g, grads))
    expect = from_torch(name, tm.state_dict())
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(updated), jax.tree.leaves(expect)):
        np.testing.assert_allclose(a, b, atol=1e-5, err_msg=str(path))


@pytest.mark.parametrize("layers", [1, 2])
def test_charlm_logits_and_sgd_step_match(layers):
    torch.manual_seed(0)
    tm = ref.CharPredictor(V, 8, 16, layers)
    jm = CharLM(V, 8, 16, layers)
    template = jm.init(jax.random.PRNGKey(0), jnp.zeros((2, 40), jnp.int32))
    params = from_torch("charlm", tm.state_dict(), template)
    ids = np.random.default_rng(0).integers(0, V, (6, 40))
    y = np.random.default_rng(1).integers(0, V, 6)
    with torch.no_grad():
        theirs = tm(torch.from_numpy(ids)).numpy()
    ours, _ = jm.apply(params, jnp.asarray(ids, jnp.int32))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    opt = torch.optim.SGD(tm.parameters(), lr=1.0)
    loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(ids)), torch.from_numpy(y))
    opt.zero_grad()
    loss.backward()
    opt.step()
    batch = {"ids": jnp.asarray(ids, jnp.int32), "labels": jnp.asarray(y, jnp.int32), "weights": jnp.ones(6)}
    grads = jax.grad(lambda p: lm_loss(jm, "last")(p, batch, jax.random.PRNGKey(0), False)[0])(params)
    updated = jax.tree.map(lambda p, g: p - g, params, grads)
    expect = from_torch("charlm", tm.state_dict())
    for a, b in zip(jax.tree.leaves(updated), jax.tree.leaves(expect)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_round_trip_and_clear_key_errors():
    tm = _torch_model("cnn", CLASSIFIERS["cnn"][0])
    sd = {k: v.numpy() for k, v in tm.state_dict().items()}
    back = to_torch("cnn", from_torch("cnn", sd))
    assert set(back) == set(sd) and all(np.array_equal(back[k], sd[k]) for k in sd)
    torch.manual_seed(0)
    sd2 = {k: v.numpy() for k, v in ref.CNN2d(V, E, 4, names="conv_i").state_dict().items()}
    back2 = to_torch("cnn", from_torch("cnn", sd2), conv="conv2d", conv_names="conv_")
    assert set(back2) == set(sd2) and all(np.array_equal(back2[k], sd2[k]) for k in sd2)
    jm = _ours("cnn", CLASSIFIERS["cnn"][1])
    template = jm.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    with pytest.raises(SeqjaxError, match=r"unexpected key 'decoder.weight'"):
        from_torch("cnn", {**sd, "decoder.weight": sd["fc.weight"]})
    with pytest.raises(SeqjaxError, match=r"missing key 'fc.bias': expected a tensor of shape \(1,\)"):
        from_torch("cnn", {k: v for k, v in sd.items() if k != "fc.bias"}, template)
    with pytest.raises(SeqjaxError, match=r"embedding/embedding: shape \(41, 6\)"):
        from_torch("cnn", {**sd, "embedding.weight": np.zeros((41, 6))}, template)


def _sd(factory):
    torch.manual_seed(0)
    return {k: v.numpy() for k, v in factory().state_dict().items()}


def _edit(sd, drop=(), **put):
    out = {k: v for k, v in sd.items() if k not in drop}
    out.update({k.replace("__", "."): v for k, v in put.items()})
    return out


z = np.zeros
REFUSED = {  # (model, state_dict) -> the one line expected
    "conv2d_two_in_channels": ("cnn", lambda: _edit(_sd(lambda: ref.CNN2d(V, E, 4)),
                                                    **{"convs__1__weight": z((4, 2, 4, E))}),
                               r"^convs.1.weight: shape \(4, 2, 4, 6\), expected \(4, 1, \*, 6\) = "
                               r"\[n_filters, 1, width, embed\] \(Conv2d\)$"),
    "conv_wrong_embed": ("cnn", lambda: _edit(_sd(lambda: ref.CNN(V, E, 4)), **{"convs__0__weight": z((4, E + 1, 3))}),
                         r"^convs.0.weight: shape \(4, 7, 3\), expected \(4, 6, \*\)"),
    "conv_rank_2": ("cnn", lambda: _edit(_sd(lambda: ref.CNN(V, E, 4)), **{"convs__0__weight": z((4, E))}),
                    r"^convs.0.weight: shape \(4, 6\), expected \(\*, 6, \*\) = \[n_filters, embed, width\] \(Conv1d\) or"),
    "conv_both_names": ("cnn", lambda: _edit(_sd(lambda: ref.CNN2d(V, E, 4)), **{"conv_3__weight": z((4, 1, 6, E))}),
                        r"^convolutions under both names"),
    "conv_same_width_twice": ("cnn", lambda: _sd(lambda: ref.CNN2d(V, E, 4, (3, 3), names="conv_i")),
                              r"^conv_1.weight: width 3 again"),
    "conv_missing_bias": ("cnn", lambda: _edit(_sd(lambda: ref.CNN2d(V, E, 4, names="conv_i")), drop=("conv_2.bias",)),
                          r"^missing key 'conv_2.bias': expected a tensor of shape \(4,\)"),
    "no_logits": ("fasttext", lambda: _edit(_sd(lambda: ref.FastText(V, E)), fc__weight=z((0, E)), fc__bias=z(0)),
                  r"^fc.weight: shape \(0, 6\), expected \(1, 6\) \(one logit, BCE\), \(2, 6\)"),
    "stacked_lstm_as_lstm": ("lstm", lambda: _sd(lambda: ref.BiLSTM(V, E, 5, 2, 0.5)),
                             r"^unexpected key 'rnn.weight_ih_l0_reverse': seqjax's lstm model is one layer in one "
                             r"direction .*\(these weights fit the bilstm model\)$"),
    "one_direction_as_bilstm": ("bilstm", lambda: _sd(lambda: ref.RNN(V, E, 5, "lstm")),
                                r"^missing key 'rnn.weight_ih_l0_reverse': expected a tensor of shape \(20, 6\)"),
    "two_gates": ("rnn", lambda: _edit(_sd(lambda: ref.RNN(V, E, 5, "rnn")), rnn__weight_hh_l0=z((10, 5))),
                  r"^rnn.weight_hh_l0: shape \(10, 5\), expected \(G\*5, 5\) with G = 1 \(nn.RNN\)"),
    "layer_2_wrong_input": ("bilstm", lambda: _edit(_sd(lambda: ref.BiLSTM(V, E, 5, 2, 0.5)), rnn__weight_ih_l1=z((20, 5))),
                            r"^rnn.weight_ih_l1: shape \(20, 5\), expected \(20, 10\) = \[4 x hidden, input\]$"),
    "charlm_head_wrong_vocab": ("charlm", lambda: _edit(_sd(lambda: ref.CharPredictor(V, 8, 16)),
                                                         lin__weight=z((V - 1, 16))),
                                r"^lin.weight: shape \(39, 16\), expected \(40, 16\) = \[vocab, hidden\]$"),
    "charlm_bidirectional": ("charlm", lambda: _edit(_sd(lambda: ref.CharPredictor(V, 8, 16)),
                                                      lstm__weight_ih_l0_reverse=z((64, 8))),
                             r"^unexpected key 'lstm.weight_ih_l0_reverse': the char model runs one direction$"),
    "cnn_weights_as_lstm": ("lstm", lambda: _sd(lambda: ref.CNN2d(V, E, 4)),
                            r"^missing key 'rnn.weight_hh_l0'.*\(these weights fit the cnn model\)$"),
    "extra_key": ("fasttext", lambda: _edit(_sd(lambda: ref.FastText(V, E)), bn__weight=z(3)),
                  r"^unexpected key 'bn.weight' for the fasttext model, whose state_dict holds embedding.weight, "
                  r"fc.weight, fc.bias$"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_other_layouts_are_refused_in_one_line(case):
    model, make, pattern = REFUSED[case]
    with pytest.raises(SeqjaxError) as err:
        from_torch(model, make())
    assert "\n" not in str(err.value)
    assert re.search(pattern, str(err.value)), str(err.value)


@pytest.mark.parametrize("name, clip", [("adam", 0.0), ("rmsprop", 0.0), ("adam", 0.5), ("rmsprop", 0.5)])
def test_adam_and_rmsprop_steps_match_pytorch(name, clip):
    """seqjax's optimizers (what ``--optimizer adam | rmsprop`` and ``--clip`` build) against
    ``torch.optim.Adam`` / ``torch.optim.RMSprop`` with the defaults the lab leaves them at (and
    ``clip_grad_norm_`` before the step): the same gradients for 5 steps give the same weights.
    Their state (moments, step count) is what one SGD step cannot show."""
    rng = np.random.default_rng(4)
    shapes = {"w": (4, 3), "b": (3,), "tiny": (2,)}  # tiny: gradients of 1e-6, where eps's place shows
    params = {k: jnp.asarray(rng.normal(size=s).astype(np.float32)) for k, s in shapes.items()}
    grads = [{k: rng.normal(size=s).astype(np.float32) * scale * (1e-6 if k == "tiny" else 1.0)
              for k, s in shapes.items()}
             for scale in (1.0, 0.3, 2.0, 0.0, 1.0)]  # a zero gradient too: the moments alone move
    lr = 1e-2  # the lab's RMSprop; its Adam (lstm)
    tensors = {k: torch.nn.Parameter(torch.from_numpy(np.array(v))) for k, v in params.items()}
    opt = (torch.optim.Adam if name == "adam" else torch.optim.RMSprop)(list(tensors.values()), lr=lr)
    tx = make_optimizer(name, lr, clip)
    state = tx.init(params)
    for g in grads:
        for k, t in tensors.items():
            t.grad = torch.from_numpy(g[k].copy())
        if clip:
            torch.nn.utils.clip_grad_norm_(list(tensors.values()), clip)
        opt.step()
        updates, state = tx.update({k: jnp.asarray(v) for k, v in g.items()}, state, params)
        params = optax.apply_updates(params, updates)
        for k, t in tensors.items():
            np.testing.assert_allclose(params[k], t.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
