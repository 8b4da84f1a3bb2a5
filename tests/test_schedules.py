"""Learning-rate schedules, weight decay and Adam's betas from the configs, against independent
formulas and PyTorch's optimizers; a resumed run keeps its schedule's horizon."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_imdb_dir

from seqjax import SeqjaxError, configs
from seqjax.tasks import charlm, imdb
from seqjax.train.state import learning_rate, make_optimizer

torch = pytest.importorskip("torch")


def test_warmup_cosine_rises_linearly_then_follows_the_cosine():
    lr, warm, total = 0.3, 10, 50
    fn = learning_rate(lr, "warmup-cosine", total, warm)
    for step in (0, 4, 10, 23, 37, 50):
        want = lr * step / warm if step < warm else lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
        assert abs(float(fn(step)) - want) < 1e-6, step
    cos = learning_rate(lr, "cosine", total)
    assert abs(float(cos(20)) - lr * 0.5 * (1 + math.cos(math.pi * 20 / total))) < 1e-6
    assert learning_rate(lr, "constant", total) == lr
    with pytest.raises(SeqjaxError, match="--warmup-steps 50"):
        learning_rate(lr, "warmup-cosine", total, 50)


@pytest.mark.parametrize("name,wd,betas", [("adam", 0.1, (0.8, 0.95)), ("adam", 0.0, (0.5, 0.9)),
                                           ("sgd", 0.1, (0.9, 0.999)), ("rmsprop", 0.05, (0.9, 0.999))])
def test_weight_decay_and_betas_step_as_pytorch(name, wd, betas):
    """Three steps on the same gradients: AdamW (decoupled decay) and Adam's betas as
    torch.optim.AdamW / Adam; sgd's and rmsprop's decay as their PyTorch ``weight_decay``."""
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(3)]
    lr = 0.01
    tx = make_optimizer(name, lr, weight_decay=wd, betas=betas)
    p, st = {"w": jnp.asarray(w0)}, None
    st = tx.init(p)
    tw = torch.nn.Parameter(torch.tensor(w0))
    if name == "adam":
        opt = (torch.optim.AdamW([tw], lr=lr, betas=betas, weight_decay=wd) if wd
               else torch.optim.Adam([tw], lr=lr, betas=betas))
    elif name == "sgd":
        opt = torch.optim.SGD([tw], lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.RMSprop([tw], lr=lr, weight_decay=wd)
    for g in grads:
        updates, st = tx.update({"w": jnp.asarray(g)}, st, p)
        p = jax.tree.map(lambda a, u: a + u, p, updates)
        tw.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(np.asarray(p["w"]), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert float(np.abs(np.asarray(p["w"]) - w0).max()) > 1e-3  # it moved


TEXT = ("the quick brown fox jumps over the lazy dog. " * 6 + "supposing that truth is a woman. ") * 6


def test_a_resumed_run_keeps_its_schedule_horizon(tmp_path):
    """A cosine run resumed with more --epochs is refused (its learning rate would jump back up
    mid-run); with a constant rate more epochs are fine."""
    text = tmp_path / "t.txt"
    text.write_text(TEXT)

    def cfg(name, **kw):
        return configs.CharLMConfig(text=str(text), out=str(tmp_path / name), hidden=8, batch_size=64,
                                    sample_length=4, markov_orders="", optimizer="adam", lr=0.01, **kw)

    charlm.run(cfg("cos", epochs=1, lr_schedule="cosine"))
    with pytest.raises(SeqjaxError, match=r"--epochs 2: .* over 1 epochs, a horizon a resumed run keeps"):
        charlm.run(cfg("cos", epochs=2, lr_schedule="cosine", resume=True))
    charlm.run(cfg("const", epochs=1))
    r = charlm.run(cfg("const", epochs=2, resume=True))
    assert [h["epoch"] for h in r["history"]] == [1, 2]


def test_imdb_takes_the_schedule_over_its_own_horizon(tmp_path):
    """The IMDB trainer builds the schedule over epochs x batches: a warmup as long as the run is
    refused, naming the run's step count; a shorter one trains."""
    make_imdb_dir(tmp_path, {("train", "pos"): ["good fine"] * 12, ("train", "neg"): ["bad poor"] * 12,
                             ("test", "pos"): ["good"] * 4, ("test", "neg"): ["bad"] * 4})

    def cfg(name, warm):
        return configs.ImdbConfig(model="fasttext", vectors="none", embed=4, data_dir=str(tmp_path), batch_size=4,
                                  epochs=2, optimizer="adam", lr=0.05, lr_schedule="warmup-cosine", warmup_steps=warm,
                                  weight_decay=0.01, out=str(tmp_path / name))

    # 24 reviews, 30 % held out: 17 train reviews in batches of 4 -> 5 batches, 10 steps in 2 epochs
    with pytest.raises(SeqjaxError, match="--warmup-steps 10: warmup-cosine needs 0 < warmup < the run's 10 steps"):
        imdb.run(cfg("long", 10))
    assert imdb.run(cfg("short", 3))["history"][-1]["epoch"] == 2
