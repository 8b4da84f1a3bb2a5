"""conv_max_over_time: the same values and gradients as autodiff of the dense formulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_on_cpu_devices

from seqjax.nn.conv import conv_max_over_time, conv_max_over_time_dense as dense


@pytest.mark.parametrize("k", [1, 3, 5])
def test_values_and_gradients_match_autodiff(k):
    ks = jax.random.split(jax.random.PRNGKey(k), 4)
    B, T, E, F = 5, 17, 6, 7
    x = jax.random.normal(ks[0], (B, T, E))
    kernel = jax.random.normal(ks[1], (k, E, F)) * 0.5
    bias = jax.random.normal(ks[2], (F,)) - 0.5  # some filters never fire on some examples
    n_valid = jnp.array([T - k + 1, 1, 4, T - k, 2], jnp.int32)
    weights = jax.random.normal(ks[3], (B, F))

    def loss(f):
        return lambda x, kern, b: (f(x, kern, b, n_valid) * weights).sum()

    np.testing.assert_allclose(conv_max_over_time(x, kernel, bias, n_valid), dense(x, kernel, bias, n_valid),
                               rtol=1e-6, atol=1e-6)
    ours = jax.grad(loss(conv_max_over_time), argnums=(0, 1, 2))(x, kernel, bias)
    theirs = jax.grad(loss(dense), argnums=(0, 1, 2))(x, kernel, bias)
    assert np.any(np.asarray(ours[0]) == 0) and np.any(np.asarray(ours[0]) != 0)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # padding: nothing past the valid windows gets a gradient
    assert not np.any(np.asarray(ours[0])[1, k:])


def test_a_tie_sends_the_gradient_to_the_first_window_as_pytorch():
    x = jnp.zeros((1, 6, 1)).at[0, 1, 0].set(2.0).at[0, 4, 0].set(2.0)  # the same window at 1 and 4
    kernel, bias = jnp.ones((1, 1, 1)), jnp.zeros(1)
    d_x = jax.grad(lambda x: conv_max_over_time(x, kernel, bias, jnp.array([6])).sum())(x)
    np.testing.assert_array_equal(np.asarray(d_x)[0, :, 0], [0, 1, 0, 0, 0, 0])
    # jit (as in training) gives the same
    d_jit = jax.jit(jax.grad(lambda x: conv_max_over_time(x, kernel, bias, jnp.array([6])).sum()))(x)
    np.testing.assert_array_equal(d_jit, d_x)


SHARDED = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from seqjax.nn.conv import conv_max_over_time
from seqjax.train.parallel import make_mesh
mesh = make_mesh()
assert mesh.devices.size == 2
ks = jax.random.split(jax.random.PRNGKey(0), 3)
x = jax.random.normal(ks[0], (8, 20, 6))
kernel, bias = jax.random.normal(ks[1], (4, 6, 5)), jax.random.normal(ks[2], (5,))
n = jnp.array([17, 3, 9, 1, 17, 12, 5, 8], jnp.int32)
loss = lambda x, k, b, n: (conv_max_over_time(x, k, b, n) ** 2).sum()
g = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
one = g(x, kernel, bias, n)
xs = jax.device_put(x, NamedSharding(mesh, P("data")))
ns = jax.device_put(n, NamedSharding(mesh, P("data")))
two = g(xs, kernel, bias, ns)
for a, b in zip(one, two):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
print("ok")
"""


def test_gradients_are_the_same_with_the_batch_split_over_two_devices():
    r = run_on_cpu_devices(SHARDED, 2)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
