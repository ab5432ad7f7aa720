"""Recurrent cores: GRU or LSTM stacks whose state resets where `reset` is set, scanned over time.

The carry is a tuple with one entry per layer: `h [..., H]` for GRU, `(c, h)` for LSTM, always
float32 whatever the compute dtype (so `lax.scan` sees one carry type). The `mlp` core is memoryless
(Dense -> ReLU per layer, empty carry): the control for tests that need memory.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

CORES = ("gru", "lstm", "mlp")


def initialize_core_carry(kind: str, hidden_dim: int, n_layers: int, batch_shape=()) -> tuple:
    """Zero carry of a core: the state every episode starts from. batch_shape: int or tuple."""
    if kind not in CORES:
        raise ValueError(f"unknown core {kind!r}; expected one of {CORES}")
    shape = (tuple(batch_shape) if not isinstance(batch_shape, int) else (batch_shape,)) + (hidden_dim,)
    if kind == "gru":
        return tuple(jnp.zeros(shape, jnp.float32) for _ in range(n_layers))
    if kind == "lstm":
        return tuple((jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32)) for _ in range(n_layers))
    return ()


class CoreStep(nn.Module):
    """One step: (carry, (x [..., F], reset [...])) -> (carry, y [..., H]); reset zeroes the carry first."""

    kind: str = "gru"
    hidden_dim: int = 256
    n_layers: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, carry, inputs):
        x, reset = inputs
        if self.kind == "mlp":
            for i in range(self.n_layers):
                x = nn.relu(nn.Dense(self.hidden_dim, dtype=self.dtype, param_dtype=jnp.float32,
                                     name=f"dense_{i}")(x))
            return carry, x
        new_carry = []
        for i in range(self.n_layers):
            layer_carry = jax.tree.map(lambda a: jnp.where(reset[..., None], jnp.zeros_like(a), a), carry[i])
            if self.kind == "gru":
                cell = nn.GRUCell(self.hidden_dim, dtype=self.dtype, param_dtype=jnp.float32, name=f"gru_{i}")
            else:
                cell = nn.OptimizedLSTMCell(self.hidden_dim, dtype=self.dtype, param_dtype=jnp.float32,
                                            name=f"lstm_{i}")
            layer_carry, x = cell(layer_carry, x)
            new_carry.append(jax.tree.map(lambda a: a.astype(jnp.float32), layer_carry))
        return tuple(new_carry), x


# Scanned over the leading (time) axis of x and reset; parameters shared across time.
ScannedCore = nn.scan(CoreStep, variable_broadcast="params", split_rngs={"params": False},
                      in_axes=0, out_axes=0)
