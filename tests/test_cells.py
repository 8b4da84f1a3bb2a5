"""Cells as data: a cell defined only here trains through the public API; every registered cell's
recurrence (fused or generic backward pass) equals autodiff of a plain ``lax.scan`` of its step."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_imdb_dir, sentiment_reviews
from flax.traverse_util import flatten_dict

from seqjax import SeqjaxError, configs
from seqjax.nn import cells
from seqjax.nn.cells import CellDef, cell_apply, register_cell, zero_carry
from seqjax.nn.recurrent import RNN, scan_cell, sequence_mask
from seqjax.tasks import charlm, imdb


def peephole_combine(carry, gx_BG, gh_BG, w_peep_3H):
    """A peephole LSTM (Gers & Schmidhuber 2000): the input and forget gates see ``c``, the output
    gate the new ``c``; ``w_peep_3H float32[3, H]``, a parameter PyTorch's LSTM does not have."""
    _, c_BH = carry
    i, f, g, o = jnp.split(gx_BG + gh_BG, 4, axis=-1)
    i = jax.nn.sigmoid(i + w_peep_3H[0:1] * c_BH)
    f = jax.nn.sigmoid(f + w_peep_3H[1:2] * c_BH)
    c_BH = f * c_BH + i * jnp.tanh(g)
    o = jax.nn.sigmoid(o + w_peep_3H[2:3] * c_BH)
    return o * jnp.tanh(c_BH), c_BH


PEEPHOLE = register_cell(CellDef("peephole_lstm", 4, peephole_combine, carry=2,
                                 extra=(("weight_peephole", lambda H: (3, H)),)))
ALL = ["rnn", "lstm", "gru", "indrnn", "peephole_lstm"]


def plain_scan(kind, x_TBF, lengths_B, params, carry):
    """The reference: ``lax.scan`` of the cell's one step (:func:`cell_apply`, the cell's own
    definition), the carry frozen and the output zero past each length; JAX differentiates it."""
    mask_TB1 = (jnp.arange(x_TBF.shape[0])[:, None] < lengths_B[None, :])[..., None]

    def body(c, xm):
        x_BF, m_B1 = xm
        new = tuple(jnp.where(m_B1, n, o) for n, o in zip(cell_apply(kind, c, x_BF, *params), c))
        return new, jnp.where(m_B1, new[0], 0.0)

    carry, y_TBH = jax.lax.scan(body, carry, (x_TBF, mask_TB1))
    return y_TBH, carry


def _params(kind, H, F, seed=0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.uniform(-0.6, 0.6, s), jnp.float32) for s in cells.get_cell(kind).param_shapes(H, F)]


# (cell, backward, projection): each hand-fused pass with its projections, the generic pass on
# every cell ("hoisted" on a cell without a fused pass is the generic one)
CASES = [(k, "hoisted", p) for k in ("rnn", "lstm") for p in ("fused", "hoisted")] + [
    ("gru", "hoisted", "separate"), ("gru", "hoisted", "hoisted")] + [
    (k, "generic", "separate") for k in ("rnn", "lstm", "gru")] + [
    (k, b, p) for k in ("indrnn", "peephole_lstm") for b, p in (("hoisted", "separate"), ("generic", "hoisted"))]


@pytest.mark.parametrize("kind,backward,projection", CASES)
def test_every_cell_equals_autodiff_of_a_plain_scan(kind, backward, projection):
    """Outputs, final carry and the gradients of all parameters and inputs, ragged lengths
    including 0: the hand-fused passes (rnn / lstm / gru with "hoisted") and the generic one."""
    T, B, F, H = 6, 5, 3, 4
    p = _params(kind, H, F)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(T, B, F)), jnp.float32)
    lengths = jnp.asarray([6, 0, 3, 1, 5], jnp.int32)
    mask = sequence_mask(lengths, T).T
    c0 = zero_carry(kind, B, H)

    def loss(run):
        def f(p, x):
            y, c = run(p, x)
            return (y ** 3).sum() + sum((ci * jnp.arange(1, H + 1)[None]).sum() for ci in c)
        return f

    ours = loss(lambda p, x: scan_cell(kind, x, mask, *p[:4], c0, projection=projection, backward=backward,
                                       extra=tuple(p[4:])))
    ref = loss(lambda p, x: plain_scan(kind, x, lengths, p, c0))
    y, c = scan_cell(kind, x, mask, *p[:4], c0, projection=projection, backward=backward, extra=tuple(p[4:]))
    y_ref, c_ref = plain_scan(kind, x, lengths, p, c0)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(c, c_ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    g, g_ref = jax.grad(ours, argnums=(0, 1))(p, x), jax.grad(ref, argnums=(0, 1))(p, x)
    assert len(jax.tree.leaves(g)) == len(cells.get_cell(kind).param_names()) + 1
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        assert float(jnp.abs(b).max()) > 0
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["indrnn", "peephole_lstm"])
def test_bidirectional_stacks_of_any_cell_in_one_loop_equal_two_loops(kind):
    """Two bidirectional layers of a cell without a fused pass: both directions in one
    ``lax.scan`` (the cell's ``combine`` mapped over the direction axis, its own parameters
    stacked per direction) give the two-loop layer's outputs and gradients."""
    x = jnp.asarray(np.random.default_rng(2).normal(size=(4, 5, 3)), jnp.float32)
    lengths = jnp.asarray([5, 0, 2, 4], jnp.int32)
    two, one = (RNN(4, kind, num_layers=2, bidirectional=True, fuse_directions=f) for f in (False, True))
    params = two.init(jax.random.PRNGKey(0), x, lengths)

    def loss(m):
        def f(p, x):
            out, finals = m.apply(p, x, lengths)
            return (out ** 2).sum() + sum((c[-1] ** 2).sum() for c in finals)
        return jax.jit(jax.value_and_grad(f, argnums=(0, 1)))

    (l_two, g_two), (l_one, g_one) = loss(two)(params, x), loss(one)(params, x)
    np.testing.assert_allclose(l_one, l_two, rtol=1e-5)
    assert any(k.startswith("weight_peephole") for k in params["params"]) == (kind == "peephole_lstm")
    for a, b in zip(jax.tree.leaves(g_one), jax.tree.leaves(g_two)):
        assert float(jnp.abs(b).max()) > 0
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_unknown_cells_are_refused_never_run_as_another():
    x = jnp.ones((2, 3, 4))
    with pytest.raises(ValueError, match="cell 'no_such_cell': choose rnn, lstm, gru, indrnn"):
        RNN(4, "no_such_cell").init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="already registered"):
        register_cell(CellDef("gru", 3, cells.gru_combine))
    with pytest.raises(ValueError, match="recurrent 'banded'"):
        CellDef("banded", 1, cells.rnn_combine, recurrent="banded")
    with pytest.raises(ValueError, match="takes 5 parameters"):  # the peephole weight left out
        scan_cell("peephole_lstm", jnp.ones((3, 2, 4)), None, *_params("peephole_lstm", 4, 4)[:4],
                  zero_carry("peephole_lstm", 2, 4))
    with pytest.raises(SeqjaxError, match="--cell 'no_such_cell'"):
        configs.CharLMConfig(cell="no_such_cell")
    with pytest.raises(SeqjaxError, match="--cell 'no_such_cell'"):
        configs.ImdbConfig(model="lstm", cell="no_such_cell")


TEXT = ("the quick brown fox jumps over the lazy dog. " * 6 + "supposing that truth is a woman. ") * 8


def test_a_cell_registered_here_trains_the_char_lm_and_an_imdb_classifier(tmp_path):
    """Through the public API only: the peephole LSTM defined in this file trains the char LM
    (and samples from it) and the IMDB LSTM classifier; its own parameter trains too."""
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    cfg = configs.CharLMConfig(text=str(text), cell="peephole_lstm", out=str(tmp_path / "lm"), epochs=2, hidden=16,
                               batch_size=32, sample_length=12, markov_orders="", optimizer="adam", lr=0.01,
                               results=str(tmp_path / "lm.json"))
    charlm.run(cfg)
    res = json.loads((tmp_path / "lm.json").read_text())
    first, last = res["history"][0], res["history"][-1]
    assert last["train_loss"] < first["train_loss"] and np.isfinite(res["heldout_bpc"])
    trained = flatten_dict(charlm.load(cfg.out).params)
    assert next(v for k, v in trained.items() if k[-1] == "weight_peephole_l0").shape == (3, 16)
    assert len(charlm.sample_from_checkpoint(cfg.out, "the quick", 0.5, 20, 0, "stateful", 0)) == 20

    make_imdb_dir(tmp_path, sentiment_reviews(40, 20))
    icfg = configs.ImdbConfig(model="lstm", cell="peephole_lstm", vectors="none", embed=8, hidden=8,
                              data_dir=str(tmp_path), batch_size=16, epochs=4, optimizer="adam", lr=0.02,
                              out=str(tmp_path / "clf"), results=str(tmp_path / "clf.json"))
    r = imdb.run(icfg)
    assert r["test_accuracy"] > 0.8, r["test_accuracy"]  # chance is 0.5
    p = imdb.load(icfg.out)(["good great lovely", "awful poor dull"])
    assert p[0] > 0.5 > p[1]


def test_the_cell_in_docs_extending_runs():
    """docs/extending.md's code blocks, run in order: registering a cell and using it."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "extending.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert len(blocks) >= 2
    scope: dict = {}
    exec(compile("\n".join(blocks), "docs/extending.md", "exec"), scope)  # noqa: S102
    assert scope["MGU"] is cells.get_cell("mgu")
