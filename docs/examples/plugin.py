"""A plugin for ``seqjax --plugin docs/examples/plugin.py ...``: a cell and an encoder that
seqjax does not ship, registered when the module is imported (docs/extending.md).

* ``cifg``: the LSTM with coupled input and forget gates (Greff et al., 2017, "LSTM: A Search
  Space Odyssey"): the forget gate is ``1 - i``, so 3 gate blocks (i, g, o) instead of 4.
* ``maxpool``: the max over time of the embedded tokens, ``float32[B, E]`` (a bag of words with
  the strongest feature per dimension).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqjax.nn.cells import CellDef, register_cell
from seqjax.nn.classifiers import EncoderDef, register_encoder
from seqjax.nn.recurrent import sequence_mask


def cifg_combine(carry, gx_BG, gh_BG):
    """One step from ``gx_BG, gh_BG float32[B, 3H]`` (gates i, g, o); carry ``(h, c)`` float32[B, H]."""
    h_BH, c_BH = carry
    i, g, o = jnp.split(gx_BG + gh_BG, 3, axis=-1)
    i = jax.nn.sigmoid(i)
    c_BH = (1.0 - i) * c_BH + i * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c_BH), c_BH


class MaxPool(nn.Module):
    """``(x float32[B, T, E], lengths int32[B], train) -> float32[B, E]``: the max over each text's
    own tokens (zeros for an empty text)."""

    @nn.compact
    def __call__(self, x_BTE, lengths_B, train=False):
        m_BT1 = sequence_mask(lengths_B, x_BTE.shape[1])[:, :, None]
        return jnp.where(lengths_B[:, None] > 0, jnp.where(m_BT1, x_BTE, -jnp.inf).max(1), 0.0)


register_cell(CellDef("cifg", gates=3, combine=cifg_combine, carry=2))
register_encoder(EncoderDef("maxpool", lambda *, dtype=jnp.float32: MaxPool(), (),
                            "the max over time of the token vectors", preset=dict(embed=32, lr=0.01)))
