"""Backend-aware defaults (seqjax/backend.py): each decision per backend, the flags that override
them, and the cuDNN path's wiring into RNN (through its CPU stand-in, ``lstm_ref``)."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import backend, configs
from seqjax.nn.classifiers import TextClassifier
from seqjax.nn.recurrent import RNN, default_projection

pytestmark = pytest.mark.usefixtures("highest_precision")


def test_the_cpu_keeps_its_measured_choices():
    assert backend.platform() == "cpu"
    assert default_projection("lstm", 8, 128) == "fused" and default_projection("lstm", 50, 100) == "separate"
    assert default_projection("gru", 8, 128) == "separate"
    assert backend.unroll(0) == 1 and backend.unroll(4) == 4
    assert backend.fuse_directions() is False and backend.fuse_directions(True) is True
    assert backend.recurrence("auto", "lstm", jnp.float32, False) == "scan"
    assert not backend.paces_host()  # one device here


def test_gpu_and_tpu_get_their_own_defaults(monkeypatch):
    """The decision table's accelerator column, read with the platform set to each."""
    for name in ("gpu", "tpu"):
        monkeypatch.setattr(backend, "platform", lambda name=name: name)
        assert default_projection("lstm", 8, 128) == "hoisted" and default_projection("gru", 50, 100) == "hoisted"
        assert backend.unroll(0) == backend.GPU_TPU_UNROLL and backend.unroll(2) == 2
        assert backend.fuse_directions() is True and backend.fuse_directions(False) is False
        assert not backend.paces_host()


def test_cudnn_is_refused_where_it_cannot_run():
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        backend.recurrence("cudnn", "lstm", jnp.float32, False)
    with pytest.raises(ValueError, match="choose auto, scan or cudnn"):
        backend.recurrence("fast", "lstm", jnp.float32, False)
    # auto never takes cuDNN for another cell, bfloat16 or dropout between layers, even on CUDA
    for args in (("gru", jnp.float32, False), ("lstm", jnp.bfloat16, False), ("lstm", jnp.float32, True)):
        assert backend.recurrence("auto", *args) == "scan"
    r = subprocess.run([sys.executable, "-m", "seqjax.cli", "imdb", "train", "--recurrence", "cudnn",
                        "--train-limit", "10"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--recurrence cudnn: needs a CUDA GPU" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("layers, bi", [(1, False), (2, True)])
def test_rnn_through_the_cudnn_mapping_equals_the_scan(layers, bi):
    """RNN(recurrence="reference") runs the cuDNN path's weight mapping and masking through
    jax.experimental.rnn.lstm_ref: same parameters, outputs, finals and gradients as the scan."""
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 7, 6))
    lengths = jnp.array([7, 1, 0, 4, 6])
    scan, ref = (RNN(8, "lstm", layers, bidirectional=bi, recurrence=r) for r in ("scan", "reference"))
    p = scan.init(jax.random.PRNGKey(1), x, lengths)
    assert jax.tree.structure(ref.init(jax.random.PRNGKey(1), x, lengths)) == jax.tree.structure(p)

    def loss(m, p, x):
        out, finals = m.apply(p, x, lengths)
        return (out**2).sum() + sum((a * (i + 1)).sum() for i, carry in enumerate(finals) for a in carry)

    np.testing.assert_allclose(loss(ref, p, x), loss(scan, p, x), rtol=1e-5)
    (gp_s, gx_s), (gp_r, gx_r) = (jax.grad(lambda p, x, m=m: loss(m, p, x), argnums=(0, 1))(p, x)
                                  for m in (scan, ref))
    np.testing.assert_allclose(gx_r, gx_s, atol=1e-5)
    for k, v in gp_s["params"].items():
        np.testing.assert_allclose(gp_r["params"][k], v, atol=1e-5, err_msg=k)


def test_a_bilstm_classifier_through_the_mapping_equals_the_scan():
    ids = jnp.array([[3, 4, 5, 6, 0], [7, 8, 0, 0, 0]])
    lengths = jnp.array([4, 2])
    scan, ref = (TextClassifier(vocab=20, embed=6, encoder="bilstm", hidden=5, layers=2, recurrence=r)
                 for r in ("scan", "reference"))
    p = scan.init(jax.random.PRNGKey(0), ids, lengths)
    np.testing.assert_allclose(ref.apply(p, ids, lengths), scan.apply(p, ids, lengths), atol=1e-6)


def test_deterministic_asks_xla_for_deterministic_gpu_kernels(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    backend.deterministic(True)
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2 " + backend.DETERMINISTIC_FLAG
    backend.deterministic(True)  # once
    assert os.environ["XLA_FLAGS"].count("xla_gpu_deterministic_ops") == 1
    monkeypatch.setenv("XLA_FLAGS", "--xla_gpu_deterministic_ops=false")  # the user's own setting wins
    backend.deterministic(True)
    assert os.environ["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=false"
    monkeypatch.delenv("XLA_FLAGS")
    backend.deterministic(False)
    assert "XLA_FLAGS" not in os.environ
    code = ("import os, sys; from seqjax import cli; cli.main(sys.argv[1:]); "
            "print('FLAGS', os.environ.get('XLA_FLAGS', ''))")
    for flag, want in (("--deterministic", True), ("--no-deterministic", False)):
        r = subprocess.run([sys.executable, "-c", code, flag, "markov", "--sample", "0", "--text", __file__],
                           capture_output=True, text=True, timeout=300, env={**os.environ, "XLA_FLAGS": ""})
        assert r.returncode == 0, r.stderr
        assert ("xla_gpu_deterministic_ops" in r.stdout.split("FLAGS")[-1]) == want


def test_unroll_and_recurrence_are_flags_of_both_trainers():
    for cls in (configs.CharLMConfig, configs.ImdbConfig):
        assert cls().unroll == 0 and cls().recurrence == "auto" and cls().precision == "float32"
        with pytest.raises(Exception, match="--recurrence"):
            cls(recurrence="cuda")
