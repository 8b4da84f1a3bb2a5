"""Cells against a NumPy reference; masking, reversal within lengths, stacks, gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.nn.cells import Cell, zero_carry
from seqjax.nn.recurrent import RNN, reverse_within_lengths, scan_bidirectional, scan_cell, sequence_mask

pytestmark = pytest.mark.usefixtures("highest_precision")  # parity to 1e-5, in this file only


def sig(x, xp=np):
    return 1 / (1 + xp.exp(-x))


def np_step(kind, h, c, x, w_ih, w_hh, b_ih, b_hh, xp=np):
    """One step of the PyTorch cell equations, written out; ``xp``: numpy, or jax.numpy."""
    gx, gh = x @ w_ih.T + b_ih[None], h @ w_hh.T + b_hh[None]
    if kind == "rnn":
        return xp.tanh(gx + gh), c
    if kind == "lstm":
        i, f, g, o = xp.split(gx + gh, 4, axis=-1)
        c = sig(f, xp) * c + sig(i, xp) * xp.tanh(g)
        return sig(o, xp) * xp.tanh(c), c
    r = sig(gx[:, :h.shape[1]] + gh[:, :h.shape[1]], xp)
    z = sig(gx[:, h.shape[1]:2 * h.shape[1]] + gh[:, h.shape[1]:2 * h.shape[1]], xp)
    n = xp.tanh(gx[:, 2 * h.shape[1]:] + r * gh[:, 2 * h.shape[1]:])
    return (1 - z) * n + z * h, c


def np_run(kind, x, p, suffix="l0", length=None):
    """Reference: step one sequence ``x [T, F]`` for ``length`` steps; returns outputs, h, c."""
    w = [np.asarray(p[f"{n}_{suffix}"], np.float64) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    H = w[1].shape[1]
    h, c = np.zeros((1, H)), np.zeros((1, H))
    outs = []
    for t in range(length if length is not None else len(x)):
        h, c = np_step(kind, h, c, x[t:t + 1], *w)
        outs.append(h[0])
    return np.array(outs), h[0], c[0]


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("F,H", [(5, 4), (2, 16)])  # two matmuls per step; one fused matmul (8F <= H)
def test_cell_matches_numpy(kind, F, H):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, F)).astype(np.float32)
    m = RNN(H, kind)
    p = m.init(jax.random.PRNGKey(0), x)["params"]
    out, finals = m.apply({"params": p}, x)
    assert out.shape == (3, 6, H) and out.dtype == jnp.float32
    for b in range(3):
        ref, h, c = np_run(kind, x[b], p)
        np.testing.assert_allclose(out[b], ref, atol=1e-5)
        np.testing.assert_allclose(finals[0][0][b], h, atol=1e-5)
        if kind == "lstm":
            np.testing.assert_allclose(finals[0][1][b], c, atol=1e-5)
    # the single-step Cell module agrees with the layer
    cell = Cell(H, kind)
    cp = {"params": {k.replace("_l0", ""): v for k, v in p.items()}}
    carry, y = cell.apply(cp, zero_carry(kind, 3, H), jnp.asarray(x[:, 0]))
    np.testing.assert_allclose(y, out[:, 0], atol=1e-6)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_padding_gives_same_result_as_each_sequence_alone(kind):
    rng = np.random.default_rng(1)
    lengths = np.array([5, 2, 1, 4], np.int32)
    x = rng.normal(size=(4, 5, 3)).astype(np.float32)
    x_padded = x.copy()
    x_padded[np.arange(5)[None, :] >= lengths[:, None]] = 99.0  # garbage in the padding
    m = RNN(6, kind, num_layers=2, bidirectional=True)
    p = m.init(jax.random.PRNGKey(2), x)
    out, finals = m.apply(p, x_padded, jnp.asarray(lengths))
    for b, L in enumerate(lengths):
        o1, f1 = m.apply(p, x[b:b + 1, :L])
        np.testing.assert_allclose(out[b, :L], o1[0], atol=1e-5)
        assert np.all(np.asarray(out[b, L:]) == 0.0)
        for fa, fb in zip(finals, f1):
            for ta, tb in zip(fa, fb):
                np.testing.assert_allclose(ta[b], tb[0], atol=1e-5)
    # finals only (the classifiers' encoders): the same states, no outputs
    none, f2 = m.apply(p, x_padded, jnp.asarray(lengths), outputs=False)
    assert none is None
    for fa, fb in zip(finals, f2):
        for ta, tb in zip(fa, fb):
            np.testing.assert_array_equal(ta, tb)


@pytest.mark.parametrize("fuse", [False, True])
def test_reverse_direction_reverses_within_length(fuse):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 3)).astype(np.float32)
    lengths = np.array([6, 3], np.int32)
    m = RNN(4, "gru", bidirectional=True, fuse_directions=fuse)
    p = m.init(jax.random.PRNGKey(0), x)["params"]
    out, finals = m.apply({"params": p}, x, jnp.asarray(lengths))
    for b, L in enumerate(lengths):
        ref, h, _ = np_run("gru", x[b, :L][::-1], p, "l0_reverse")
        np.testing.assert_allclose(out[b, :L, 4:], ref[::-1], atol=1e-5)
        np.testing.assert_allclose(finals[1][0][b], h, atol=1e-5)


def test_reverse_within_lengths_is_an_involution():
    x = jnp.arange(12).reshape(4, 3)  # [T, B]
    r = reverse_within_lengths(x, jnp.array([4, 2, 0]))
    np.testing.assert_array_equal(r[:, 0], [9, 6, 3, 0])
    np.testing.assert_array_equal(r[:, 1], [4, 1, 7, 10])
    np.testing.assert_array_equal(r[:, 2], x[:, 2])
    np.testing.assert_array_equal(reverse_within_lengths(r, jnp.array([4, 2, 0])), x)
    np.testing.assert_array_equal(sequence_mask(jnp.array([2, 0]), 3), [[1, 1, 0], [0, 0, 0]])


def plain_scan(kind, p, x_BTF, lengths_B, initial, layers):
    """The reference the layer must equal: :func:`np_step`'s equations in one ``lax.scan`` per
    layer, written here without the layer's code (no hoisted projection, no custom backward): the
    carry stops at ``t >= length``, outputs past the length are 0. Returns ``float32[B, T, H]``
    and each layer's final ``(h, c)``."""
    T = x_BTF.shape[1]
    mask_TB1 = (jnp.arange(T)[:, None] < lengths_B[None, :])[..., None]
    h_TBF = jnp.swapaxes(x_BTF, 0, 1)
    finals = []
    for layer in range(layers):
        w = [p[f"{n}_l{layer}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

        def step(carry, xs, w=w):
            (h, c), (x_BF, m_B1) = carry, xs
            h_new, c_new = np_step(kind, h, c, x_BF, *w, xp=jnp)
            return (jnp.where(m_B1, h_new, h), jnp.where(m_B1, c_new, c)), jnp.where(m_B1, h_new, 0.0)

        carry = (initial[layer][0], initial[layer][-1])  # rnn / gru carry no c: a dummy that stays put
        (h, c), h_TBF = jax.lax.scan(step, carry, (h_TBF, mask_TB1))
        finals.append((h, c) if kind == "lstm" else (h,))
    return jnp.swapaxes(h_TBF, 0, 1), finals


def test_gradients_equal_autodiff_of_a_plain_scan():
    """The layer's loss and its gradients w.r.t. params, input and initial states equal those of
    :func:`plain_scan` (autodiff through a scan written from the equations): an LSTM of 2 layers
    (rnn and gru: their hoisted backward equals autodiff's, below), ragged lengths (one 0),
    outputs and final states both in the loss. The initial state is used."""
    kind = "lstm"
    rng = np.random.default_rng(5)
    B, T, F, H = 4, 6, 3, 5
    x = jnp.asarray(rng.normal(size=(B, T, F)).astype(np.float32))
    lengths = jnp.array([6, 2, 0, 4], jnp.int32)
    initial = [tuple(jnp.asarray(rng.normal(size=(B, H)).astype(np.float32)) for _ in range(2 if kind == "lstm" else 1))
               for _ in range(2)]
    w_out = jnp.asarray(rng.normal(size=(H,)).astype(np.float32))
    m = RNN(H, kind, num_layers=2)
    p = m.init(jax.random.PRNGKey(0), x)

    def loss(out, finals):
        return (jnp.tanh(out) @ w_out).sum() + sum((t * (k + 1.0)).sum() for k, c in enumerate(finals) for t in c)

    def layer(p, x, initial):
        return loss(*m.apply(p, x, lengths, initial))

    def reference(p, x, initial):
        return loss(*plain_scan(kind, p["params"], x, lengths, initial, 2))

    np.testing.assert_allclose(layer(p, x, initial), reference(p, x, initial), rtol=1e-6)
    g_layer, g_ref = (jax.jit(jax.grad(f, argnums=(0, 1, 2)))(p, x, initial) for f in (layer, reference))
    assert _rel_err(g_layer, g_ref) < 1e-5
    assert all(float(jnp.abs(g).max()) > 1e-3 for g in jax.tree.leaves(g_ref[2]))  # the initial state reaches the loss


def test_step_matches_full_sequence():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 3))
    m = RNN(4, "lstm", num_layers=2)
    p = m.init(jax.random.PRNGKey(1), x)
    out, _ = m.apply(p, x)
    carries = [zero_carry("lstm", 2, 4)] * 2
    for t in range(5):
        h, carries = m.apply(p, x[:, t], carries, method=RNN.step)
        np.testing.assert_allclose(h, out[:, t], atol=1e-5)


def _rel_err(a, b):
    return max(float(jnp.abs(x - y).max() / (jnp.abs(y).max() + 1e-12))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers,bidirectional,F,H,projection,fuse", [
    (1, False, 3, 5, None, False), (2, True, 3, 5, "separate", False), (2, False, 2, 16, "fused", False),
    (2, True, 3, 5, "hoisted", True)])
def test_hoisted_backward_equals_autodiff_of_the_scan(kind, layers, bidirectional, F, H, projection, fuse):
    """The custom backward pass gives autodiff's gradients w.r.t. params, inputs and the initial
    state: ragged lengths (one of them 0) and full ones, both directions (in two loops and in
    one), stacks, a non-zero initial state, all three input projections, outputs and final
    states both used."""
    rng = np.random.default_rng(7)
    B, T = 4, 6
    x = jnp.asarray(rng.normal(size=(B, T, F)).astype(np.float32))
    lengths = jnp.array([6, 3, 0, 5], jnp.int32)
    D = 2 if bidirectional else 1
    n_state = 2 if kind == "lstm" else 1
    initial = [tuple(jnp.asarray(rng.normal(size=(B, H)).astype(np.float32)) for _ in range(n_state))
               for _ in range(layers * D)]
    w_out = jnp.asarray(rng.normal(size=(D * H,)).astype(np.float32))
    models = {b: RNN(H, kind, num_layers=layers, bidirectional=bidirectional, backward=b, projection=projection,
                     fuse_directions=fuse)
              for b in ("hoisted", "autodiff")}
    p = models["autodiff"].init(jax.random.PRNGKey(0), x)

    def loss(p, x, initial, backward, lengths):
        out, finals = models[backward].apply(p, x, lengths, initial)
        s = (jnp.tanh(out) @ w_out).sum()
        return s + sum((f * (k + 1.0)).sum() for k, c in enumerate(finals) for f in c)

    for lens in (lengths, None):
        g_new = jax.grad(loss, argnums=(0, 1, 2))(p, x, initial, "hoisted", lens)
        g_ref = jax.grad(loss, argnums=(0, 1, 2))(p, x, initial, "autodiff", lens)
        assert _rel_err(g_new, g_ref) < 1e-5
        np.testing.assert_allclose(loss(p, x, initial, "hoisted", lens), loss(p, x, initial, "autodiff", lens),
                                   rtol=1e-6)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_hoisted_backward_with_final_state_only(kind):
    """``outputs=False`` (what the classifiers use): the last layer emits nothing, gradients still
    equal autodiff's."""
    rng = np.random.default_rng(8)
    x = jnp.asarray(rng.normal(size=(3, 5, 4)).astype(np.float32))
    lengths = jnp.array([5, 1, 3], jnp.int32)
    models = {b: RNN(6, kind, num_layers=2, backward=b) for b in ("hoisted", "autodiff")}
    p = models["hoisted"].init(jax.random.PRNGKey(1), x)

    def loss(p, x, backward):
        _, finals = models[backward].apply(p, x, lengths, outputs=False)
        return (finals[-1][0] ** 2).sum()

    g_new, g_ref = (jax.grad(loss, argnums=(0, 1))(p, x, b) for b in ("hoisted", "autodiff"))
    assert _rel_err(g_new, g_ref) < 1e-5


def _value_and_grads(model, w_out, outputs):
    """jit of the loss (outputs through ``w_out``, every final state weighted by its index) and
    its gradients w.r.t. params, input and initial states."""
    def loss(p, x, initial, lengths):
        out, finals = model.apply(p, x, lengths, initial, outputs=outputs)
        s = 0.0 if out is None else (jnp.tanh(out) @ w_out).sum()
        return s + sum((f * (k + 1.0)).sum() for k, c in enumerate(finals) for f in c)
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers,outputs", [(1, True), (1, False), (2, True), (2, False)])
def test_one_loop_bidirectional_equals_two_scans(kind, layers, outputs):
    """Both directions in one loop (``fuse_directions=True``) have the two-scan layer's
    parameters (names, shapes, init) and give its loss and gradients w.r.t. params, input and
    initial states: ragged lengths with a 0 and full ones, outputs used or final states only."""
    rng = np.random.default_rng(11)
    B, T, F, H = 4, 6, 3, 5
    x = jnp.asarray(rng.normal(size=(B, T, F)).astype(np.float32))
    lengths = jnp.array([6, 3, 0, 5], jnp.int32)
    n_state = 2 if kind == "lstm" else 1
    initial = [tuple(jnp.asarray(rng.normal(size=(B, H)).astype(np.float32)) for _ in range(n_state))
               for _ in range(2 * layers)]
    w_out = jnp.asarray(rng.normal(size=(2 * H,)).astype(np.float32))
    fused, two = (RNN(H, kind, layers, bidirectional=True, fuse_directions=f) for f in (True, False))
    p = two.init(jax.random.PRNGKey(0), x)
    jax.tree.map(np.testing.assert_array_equal, fused.init(jax.random.PRNGKey(0), x), p)
    f_fused, f_two = (_value_and_grads(m, w_out, outputs) for m in (fused, two))
    for lens in (lengths, None):
        assert _rel_err(f_fused(p, x, initial, lens), f_two(p, x, initial, lens)) < 1e-5


@pytest.mark.parametrize("step_matmul", ["dots", "batched"])
@pytest.mark.parametrize("projection", ["fused", "separate", "hoisted"])
def test_scan_bidirectional_equals_two_scan_cells(step_matmul, projection):
    """:func:`scan_bidirectional`, with each per-step product and input projection, against a
    forward :func:`scan_cell` and one on the input reversed within each length: outputs, final
    states and gradients w.r.t. input, weights and initial states."""
    rng = np.random.default_rng(12)
    T, B, F, H = 6, 4, 3, 5
    x_TBF = jnp.asarray(rng.normal(size=(T, B, F)).astype(np.float32))
    lengths = jnp.array([6, 3, 0, 5], jnp.int32)
    mask_TB = sequence_mask(lengths, T).T
    weights = tuple(jnp.asarray(0.4 * rng.normal(size=s).astype(np.float32))
                    for s in [(2, 4 * H, F), (2, 4 * H, H), (2, 4 * H), (2, 4 * H)])
    carry = tuple(jnp.asarray(rng.normal(size=(2, B, H)).astype(np.float32)) for _ in range(2))
    u_TBH, v_TBH = (jnp.asarray(rng.normal(size=(T, B, H)).astype(np.float32)) for _ in range(2))

    def one_loop(x_TBF, weights, carry):
        (y_TBH, r_TBH), final = scan_bidirectional("lstm", x_TBF, mask_TB, *weights, carry, projection=projection,
                                                   step_matmul=step_matmul)
        return y_TBH, r_TBH, final

    def two_loops(x_TBF, weights, carry):
        y_TBH, f_fwd = scan_cell("lstm", x_TBF, mask_TB, *(w[0] for w in weights), tuple(c[0] for c in carry),
                                 projection=projection)
        r_TBH, f_rev = scan_cell("lstm", reverse_within_lengths(x_TBF, lengths), mask_TB, *(w[1] for w in weights),
                                 tuple(c[1] for c in carry), projection=projection)
        return y_TBH, reverse_within_lengths(r_TBH, lengths), tuple(jnp.stack(s) for s in zip(f_fwd, f_rev))

    def loss(run, *args):
        y_TBH, r_TBH, final = run(*args)
        return (jnp.tanh(y_TBH) * u_TBH).sum() + (jnp.tanh(r_TBH) * v_TBH).sum() + (final[0] + 2 * final[1]).sum()

    args = (x_TBF, weights, carry)
    assert _rel_err(jax.jit(one_loop)(*args), jax.jit(two_loops)(*args)) < 1e-5
    g_one, g_two = (jax.jit(jax.grad(functools.partial(loss, run), argnums=(0, 1, 2)))(*args)
                    for run in (one_loop, two_loops))
    assert _rel_err(g_one, g_two) < 1e-5
