"""Observation encoders: an obs dict -> features [..., hidden_dim]. Every key is read, none dropped.

The leading (time, batch) axes are those of "window" [..., W, D] or "state" [..., S]; every other
entry is flattened over its remaining axes. Keys are read in sorted order, so the feature layout
depends on the key names only. Parameters are float32; `dtype` is the compute dtype.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxtrade.models.layers import LayerNorm

# Trailing (per-observation) rank of the keys every env emits; any other key is read with the leading
# axes these imply, so an extra entry (an action mask, a Greeks vector) needs no code here.
_RANKS = {"window": 2, "state": 1}


def _lead_shape(obs) -> tuple:
    for name, rank in _RANKS.items():
        if name in obs:
            x = obs[name]
            return x.shape[:x.ndim - rank]
    raise KeyError(f"obs needs a 'window' [..., W, D] or 'state' [..., S] entry to tell batch axes from "
                   f"feature axes; it has {sorted(obs)}")


def flatten_obs(obs, keys=None, dtype=jnp.float32) -> jnp.ndarray:
    """Every entry in `keys` (default: all, sorted) flattened to [..., size] and concatenated -> [..., F]."""
    lead = _lead_shape(obs)
    keys = sorted(obs) if keys is None else keys
    parts = [obs[k].astype(dtype).reshape(lead + (-1,)) for k in keys]
    return jnp.concatenate(parts, axis=-1)


class MLPEncoder(nn.Module):
    """n_layers x (Dense -> ReLU -> LayerNorm -> Dropout) over every obs entry, flattened and joined."""

    hidden_dim: int = 256
    n_layers: int = 2
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs, *, train: bool = False):
        x = flatten_obs(obs, dtype=self.dtype)
        for i in range(self.n_layers):
            x = nn.Dense(self.hidden_dim, dtype=self.dtype, param_dtype=jnp.float32, name=f"dense_{i}")(x)
            x = nn.relu(x)
            x = LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name=f"norm_{i}")(x)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return x


class CLSTMEncoder(nn.Module):
    """Cascaded LSTM: an LSTM over the W window rows, multi-head self-attention over its outputs,
    mean-pooled over the window, joined with every other obs entry (flattened, sorted by key) through
    Dense -> ReLU -> LayerNorm -> Dropout."""

    hidden_dim: int = 256
    n_heads: int = 8
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs, *, train: bool = False):
        if "window" not in obs:
            raise KeyError(f"the clstm encoder runs its LSTM over obs['window'] [..., W, D]; the obs has "
                           f"{sorted(obs)} (use model.encoder='mlp')")
        window = obs["window"].astype(self.dtype)
        lead = window.shape[:-2]
        rows = window.reshape((-1,) + window.shape[-2:])                       # [N, W, D]
        cell = nn.OptimizedLSTMCell(self.hidden_dim, dtype=self.dtype, param_dtype=jnp.float32)
        seq = nn.RNN(cell, name="lstm")(rows)                                  # [N, W, H]
        att = nn.MultiHeadDotProductAttention(num_heads=self.n_heads, dtype=self.dtype,
                                              param_dtype=jnp.float32, deterministic=True,
                                              name="attention")(seq)
        seq = LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="attention_norm")(seq + att)
        pooled = seq.mean(axis=-2).reshape(lead + (self.hidden_dim,))
        others = sorted(k for k in obs if k != "window")
        x = pooled if not others else jnp.concatenate(
            [pooled, flatten_obs(obs, others, dtype=self.dtype)], axis=-1)
        x = nn.Dense(self.hidden_dim, dtype=self.dtype, param_dtype=jnp.float32, name="joint")(x)
        x = LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="joint_norm")(nn.relu(x))
        return nn.Dropout(self.dropout, deterministic=not train)(x)
