"""Test configuration: strict numpy rank promotion, small made-up data helpers."""

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def real_data_dir() -> Path:
    """The real corpora: $SEQJAX_DATA_DIR, else ../shared/data beside the repo; absolute, so a
    relative $SEQJAX_DATA_DIR (the README's ``../shared/data``) still holds in a notebook
    kernel, which runs in ``notebooks/``."""
    return Path(os.environ.get("SEQJAX_DATA_DIR") or SHARED_DATA).resolve()


def run_on_cpu_devices(script: str, n: int, *args: str) -> subprocess.CompletedProcess:
    """Run Python source ``script`` (with ``args``) in a fresh process whose CPU is ``n`` devices.

    The device count is fixed when JAX starts, so a test needing several devices runs in its
    own interpreter; stdout/stderr are captured as text.
    """
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"}
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env)


def make_imdb_tar(path: Path, reviews: dict) -> Path:
    """Write an aclImdb-layout .tar.gz; ``reviews[(split, label)] = [texts]``."""
    with tarfile.open(path, "w:gz") as tar:
        for (split, label), texts in reviews.items():
            for i, t in enumerate(texts):
                data = t.encode("utf-8")
                info = tarfile.TarInfo(f"aclImdb/{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def make_imdb_dir(parent: Path, reviews: dict) -> Path:
    """``parent`` holding an extracted ``aclImdb/`` of ``reviews`` (as :func:`make_imdb_tar`): the
    folder form, since a made-up archive's checksum would not match the canonical one."""
    parent.mkdir(parents=True, exist_ok=True)
    tar = make_imdb_tar(parent / "aclImdb_v1.tar.gz", reviews)
    with tarfile.open(tar) as t:
        t.extractall(parent, filter="data")
    tar.unlink()
    return parent


def sentiment_reviews(train: int, test: int, words: tuple[int, int] = (3, 20), seed: int = 0) -> dict:
    """``{(split, label): [texts]}`` (as :func:`make_imdb_dir` takes) of ``train`` / ``test`` reviews
    per label: ``words`` (low, high) random words drawn from the label's sentiment words and
    fillers, so a model that reads the words separates them well above chance."""
    rng = np.random.default_rng(seed)
    pos, neg, filler = "good great fine lovely".split(), "bad awful poor dull".split(), "the a film it was".split()

    def review(ws):
        return " ".join(rng.choice(ws + filler, int(rng.integers(*words))))

    return {(split, label): [review(pos if label == "pos" else neg) for _ in range(n)]
            for split, n in (("train", train), ("test", test)) for label in ("pos", "neg")}


@pytest.fixture
def tiny_reviews():
    return {
        ("train", "pos"): ["a great film<br />truly great", "loved it", "wonderful acting"],
        ("train", "neg"): ["awful film", "I didn't like it", "boring and bad"],
        ("test", "pos"): ["great great"],
        ("test", "neg"): ["bad bad"],
    }


@pytest.fixture
def highest_precision():
    """float32 matmuls for the test that asks (``pytestmark =
    pytest.mark.usefixtures("highest_precision")``): parity to 1e-5 needs them where TPUs and GPUs
    default to bf16 / TF32. A context, so the rest of the run keeps JAX's default."""
    with jax.default_matmul_precision("highest"):
        yield


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Downloads go to a per-test cache; tests never touch the user's. ``$XLA_FLAGS`` is restored
    after each test: ``seqjax.cli.main`` called in this process sets the CPU device count there
    (seqjax/layout.py), which must not reach the subprocesses of later tests."""
    monkeypatch.setenv("SEQJAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
