"""PyTorch parity: the lab's PyTorch models' weights imported into seqjax give the same logits
(to 1e-5) and one SGD step gives the same updated weights (to 1e-5)."""

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
from seqjax.interop.torch import from_torch, to_torch  # noqa: E402
from seqjax.nn.charlm import CharLM, lm_loss  # noqa: E402
from seqjax.nn.classifiers import TextClassifier, bce_loss  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")
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


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier_logits_match(name):
    tkw, jkw = CLASSIFIERS[name]
    tm, jm = _torch_model(name, tkw), _ours(name, jkw)
    template = jm.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    params = from_torch(name, tm.state_dict(), template)
    rng = np.random.default_rng(1)
    ids, lengths = _batch(rng, [9, 5, 1, 7, 12], T=16)
    ours = np.asarray(jm.apply(params, jnp.asarray(ids, jnp.int32), jnp.asarray(lengths, jnp.int32)))
    with torch.no_grad():
        if name in ("fasttext", "cnn"):  # the tutorial pools over the padded length: compare unpadded
            theirs = np.array([tm(torch.from_numpy(ids[i:i + 1, :max(L, 5 if name == "cnn" else 1)])).item()
                               for i, L in enumerate(lengths)])
        else:
            theirs = tm(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


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
    jm = _ours("cnn", CLASSIFIERS["cnn"][1])
    template = jm.init(jax.random.PRNGKey(0), jnp.ones((2, 8), jnp.int32), jnp.array([8, 3]))
    with pytest.raises(SeqjaxError, match=r"unexpected key 'decoder.weight'"):
        from_torch("cnn", {**sd, "decoder.weight": sd["fc.weight"]})
    with pytest.raises(SeqjaxError, match=r"missing key for fc/bias"):
        from_torch("cnn", {k: v for k, v in sd.items() if k != "fc.bias"}, template)
    with pytest.raises(SeqjaxError, match=r"embedding/embedding: shape \(41, 6\)"):
        from_torch("cnn", {**sd, "embedding.weight": np.zeros((41, 6))}, template)
