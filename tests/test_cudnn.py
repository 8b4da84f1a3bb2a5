"""seqjax's LSTM parameters on jax.experimental.rnn: the weight mapping, and lstm_ref (and, on a
CUDA backend, cuDNN) against seqjax's RNN, outputs, finals and gradients."""

import functools

import jax
import jax.experimental.rnn as jrnn
from jax.extend.backend import get_backend
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.nn import cudnn
from seqjax.nn.cells import PARAM_NAMES, get_cell
from seqjax.nn.recurrent import RNN

pytestmark = pytest.mark.usefixtures("highest_precision")  # parity to 1e-5, in this file only

B, T, F, H = 5, 6, 3, 4
# ragged, with the full length, 1 and 0 (cuDNN's failing case, run as 1 and masked)
LENGTHS = np.array([6, 1, 4, 0, 3], np.int32)
CONFIGS = [(1, False), (1, True), (2, False), (2, True)]


@functools.cache
def setup(num_layers, bidirectional, seed=0):
    """An LSTM ``RNN``, its params, an input ``float32[B, T, F]`` with non-zero padding, and
    random initial carries (list over layers x directions of ``(h, c)``); made once per
    configuration (the tests read, never change, them)."""
    rng = np.random.default_rng(seed)
    m = RNN(H, "lstm", num_layers=num_layers, bidirectional=bidirectional)
    x = jnp.asarray(rng.normal(size=(B, T, F)), jnp.float32)
    params = jax.jit(m.init)(jax.random.PRNGKey(seed), x, LENGTHS)["params"]
    P = num_layers * (2 if bidirectional else 1)
    hc = jnp.asarray(0.5 * rng.normal(size=(P, 2, B, H)), jnp.float32)
    return m, params, x, [(hc[i, 0], hc[i, 1]) for i in range(P)]


def assert_close(a, b, atol=1e-5):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, atol=atol, rtol=1e-5), a, b)


def rnn_fn(m):
    return lambda p, x, init: m.apply({"params": p}, x, LENGTHS, init)


def cudnn_fn(num_layers, bidirectional, reference):
    return lambda p, x, init: cudnn.lstm(p, x, LENGTHS, H, num_layers, bidirectional, init, reference=reference)


def loss_of(fn, seed=1):
    """A scalar of every output and final, weighted at random so no gradient cancels; the
    outputs and finals ride along as ``has_aux``."""
    def loss(p, x, init):
        out, finals = fn(p, x, init)
        finals = [tuple(carry) for carry in finals]
        leaves = [out] + [a for carry in finals for a in carry]
        rng = np.random.default_rng(seed)  # constants, drawn at trace time
        return sum(jnp.sum(a * rng.normal(size=a.shape).astype(np.float32)) for a in leaves), (out, finals)
    return loss


def value_and_grads(fn, p, x, init):
    """``((loss, (outputs, finals)), (d params, d x, d initial))`` of :func:`loss_of`, one jit."""
    return jax.jit(jax.value_and_grad(loss_of(fn), argnums=(0, 1, 2), has_aux=True))(p, x, init)


@pytest.mark.parametrize("num_layers,bidirectional", CONFIGS)
def test_reference_matches_rnn(num_layers, bidirectional):
    """Outputs, finals and the gradients of a loss of both, with respect to the params, the
    input and the initial state, through lstm_ref and through seqjax's RNN."""
    m, p, x, init = setup(num_layers, bidirectional)
    (_, (out, finals)), want = value_and_grads(rnn_fn(m), p, x, init)
    (_, (got, got_finals)), grads = value_and_grads(cudnn_fn(num_layers, bidirectional, True), p, x, init)
    assert got.shape == (B, T, (2 if bidirectional else 1) * H) and got.dtype == jnp.float32
    assert len(got_finals) == len(finals) == len(init)
    assert_close((got, got_finals), (out, finals))
    # padding is zero, and the length-0 row keeps its initial state
    assert not np.any(np.asarray(got)[np.arange(T)[None, :] >= LENGTHS[:, None]])
    for (h, c), (h0, c0) in zip(got_finals, init):
        np.testing.assert_array_equal(h[3], h0[3])
        np.testing.assert_array_equal(c[3], c0[3])
    assert set(grads[0]) == set(want[0])
    assert_close(grads, want)
    # nothing reaches the length-0 row's input; its finals' gradients reach its initial state
    assert not np.any(grads[1][3])
    assert np.all(np.abs(np.asarray(grads[2][0][0][3])) > 0)


def test_zero_initial_and_full_lengths():
    """``initial=None`` (zeros; a length-0 row's finals are zero) and ``lengths=None``."""
    m, p, x, _ = setup(1, True)
    run = jax.jit(lambda p, x, lengths: (m.apply({"params": p}, x, lengths),
                                         cudnn.lstm(p, x, lengths, H, 1, True, reference=True)))
    for lengths in (LENGTHS, None):
        (out, finals), (got, got_finals) = run(p, x, lengths)
        assert_close((got, got_finals), (out, [tuple(c) for c in finals]))
    _, (_, got_finals) = run(p, x, LENGTHS)
    assert not np.any([np.asarray(a[3]) for carry in got_finals for a in carry])


@pytest.mark.parametrize("num_layers,bidirectional", CONFIGS)
def test_flat_weights_round_trip(num_layers, bidirectional):
    m, p, x, _ = setup(num_layers, bidirectional)
    flat = cudnn.flat_weights(p, H, num_layers, bidirectional, F)
    assert flat.shape == (jrnn.get_num_params_in_lstm(F, H, num_layers, bidirectional),)
    assert flat.dtype == jnp.float32
    W_ih, W_hh, b_ih, b_hh = jrnn.unpack_lstm_weights(flat, F, H, num_layers, bidirectional)
    for i, s in enumerate(m.directions()):
        for name, got in (("weight_ih", W_ih[i]), ("weight_hh", W_hh[i]), ("bias_ih", b_ih[i]), ("bias_hh", b_hh[i])):
            np.testing.assert_array_equal(got, p[f"{name}_{s}"], err_msg=f"{name}_{s}")
    # differentiable: the cotangent of the flat vector comes back to each parameter, unpacked
    r = jnp.asarray(np.random.default_rng(2).normal(size=flat.shape), jnp.float32)
    g = jax.grad(lambda q: jnp.dot(cudnn.flat_weights(q, H, num_layers, bidirectional, F), r))(p)
    rW_ih, rW_hh, rb_ih, rb_hh = jrnn.unpack_lstm_weights(r, F, H, num_layers, bidirectional)
    for i, s in enumerate(m.directions()):
        for name, want in (("weight_ih", rW_ih[i]), ("weight_hh", rW_hh[i]), ("bias_ih", rb_ih[i]), ("bias_hh", rb_hh[i])):
            np.testing.assert_array_equal(g[f"{name}_{s}"], want, err_msg=f"{name}_{s}")


def test_flat_weights_refuses_other_params():
    _, p, _, _ = setup(2, True)
    with pytest.raises(ValueError, match="input_size"):
        cudnn.flat_weights(p, H, 2, True, F + 1)
    with pytest.raises(ValueError, match="missing"):
        cudnn.flat_weights(p, H, 3, True, F)
    with pytest.raises(ValueError, match="unexpected"):
        cudnn.flat_weights(p, H, 2, False, F)
    gru_shapes = get_cell("gru").param_shapes(H, F)
    gru = {f"{n}_l0": np.zeros(shape, np.float32) for n, shape in zip(PARAM_NAMES, gru_shapes)}
    with pytest.raises(ValueError, match="shape"):
        cudnn.flat_weights(gru, H, 1, False, F)


def test_usable():
    assert cudnn.usable(jnp.float32) and cudnn.usable(np.float32, LENGTHS)
    assert cudnn.usable(jnp.float32, jnp.asarray(LENGTHS))
    for dtype in (jnp.bfloat16, jnp.float16, jnp.float64):
        assert not cudnn.usable(dtype)
    assert not cudnn.usable(jnp.float32, LENGTHS.astype(np.float32))
    _, p, x, _ = setup(1, False)
    with pytest.raises(ValueError, match="float32"):
        cudnn.lstm(p, x.astype(jnp.bfloat16), LENGTHS, H, reference=True)


def test_available_matches_backend():
    backend = get_backend()
    cuda = backend.platform == "gpu" and "cuda" in str(backend.platform_version).lower()
    assert cudnn.available() == cuda
    if not cuda:
        _, p, x, _ = setup(1, False)
        with pytest.raises(RuntimeError, match="CUDA"):
            cudnn.lstm(p, x, LENGTHS, H)


@pytest.mark.skipif(not cudnn.available(), reason="cuDNN runs on a CUDA backend only")
@pytest.mark.parametrize("num_layers,bidirectional", CONFIGS)
def test_cudnn_matches_rnn(num_layers, bidirectional):
    """As :func:`test_reference_matches_rnn`, through cuDNN (a length 0 in the batch: jax
    issue #17966's failing backward pass, avoided by :func:`seqjax.nn.cudnn.lstm`)."""
    m, p, x, init = setup(num_layers, bidirectional)
    (_, (out, finals)), want = value_and_grads(rnn_fn(m), p, x, init)
    (_, (got, got_finals)), grads = value_and_grads(cudnn_fn(num_layers, bidirectional, False), p, x, init)
    assert_close((got, got_finals), (out, finals))
    assert_close(grads, want)
