"""Observation encoders: obs {"window": [..., W, D], "state": [..., S]} -> features [..., hidden_dim].

Any number of leading (time, batch) axes. Parameters are float32; `dtype` is the compute dtype.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxtrade.models.layers import LayerNorm


def _flatten_obs(obs) -> jnp.ndarray:
    window = obs["window"]
    flat = window.reshape(window.shape[:-2] + (window.shape[-2] * window.shape[-1],))
    return jnp.concatenate([flat, obs["state"].astype(flat.dtype)], axis=-1)


class MLPEncoder(nn.Module):
    """n_layers x (Dense -> ReLU -> LayerNorm -> Dropout) over the flattened window and the state."""

    hidden_dim: int = 256
    n_layers: int = 2
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs, *, train: bool = False):
        x = _flatten_obs(obs).astype(self.dtype)
        for i in range(self.n_layers):
            x = nn.Dense(self.hidden_dim, dtype=self.dtype, param_dtype=jnp.float32, name=f"dense_{i}")(x)
            x = nn.relu(x)
            x = LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name=f"norm_{i}")(x)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return x


class CLSTMEncoder(nn.Module):
    """Cascaded LSTM: an LSTM over the W window rows, multi-head self-attention over its outputs,
    mean-pooled over the window, joined with the state through Dense -> ReLU -> LayerNorm -> Dropout."""

    hidden_dim: int = 256
    n_heads: int = 8
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs, *, train: bool = False):
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
        x = jnp.concatenate([pooled, obs["state"].astype(self.dtype)], axis=-1)
        x = nn.Dense(self.hidden_dim, dtype=self.dtype, param_dtype=jnp.float32, name="joint")(x)
        x = LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="joint_norm")(nn.relu(x))
        return nn.Dropout(self.dropout, deterministic=not train)(x)
