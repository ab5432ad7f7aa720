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


def _lstm_attention_join(rows, lead: tuple, obs, *, hidden_dim: int, n_heads: int, dropout: float, dtype,
                         train: bool):
    """rows [N, W, D] -> features [*lead, H]: an LSTM over the W rows, multi-head self-attention over its
    outputs (with a residual and LayerNorm), mean-pooled over the window, joined with every other obs
    entry (flattened, sorted by key) through Dense -> ReLU -> LayerNorm -> Dropout. Submodules "lstm",
    "attention", "attention_norm", "joint", "joint_norm" of the calling (compact) module."""
    cell = nn.OptimizedLSTMCell(hidden_dim, dtype=dtype, param_dtype=jnp.float32)
    seq = nn.RNN(cell, name="lstm")(rows)                                      # [N, W, H]
    att = nn.MultiHeadDotProductAttention(num_heads=n_heads, dtype=dtype, param_dtype=jnp.float32,
                                          deterministic=True, name="attention")(seq)
    seq = LayerNorm(dtype=dtype, param_dtype=jnp.float32, name="attention_norm")(seq + att)
    pooled = seq.mean(axis=-2).reshape(lead + (hidden_dim,))
    others = sorted(k for k in obs if k != "window")
    x = pooled if not others else jnp.concatenate([pooled, flatten_obs(obs, others, dtype=dtype)], axis=-1)
    x = nn.Dense(hidden_dim, dtype=dtype, param_dtype=jnp.float32, name="joint")(x)
    x = LayerNorm(dtype=dtype, param_dtype=jnp.float32, name="joint_norm")(nn.relu(x))
    return nn.Dropout(dropout, deterministic=not train)(x)


def _window_rows(obs, encoder: str, dtype):
    """(obs["window"] as [N, W, D] in `dtype`, its leading axes)."""
    if "window" not in obs:
        raise KeyError(f"the {encoder} encoder runs over obs['window'] [..., W, D]; the obs has "
                       f"{sorted(obs)} (use model.encoder='mlp')")
    window = obs["window"].astype(dtype)
    return window.reshape((-1,) + window.shape[-2:]), window.shape[:-2]


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
        rows, lead = _window_rows(obs, "clstm", self.dtype)                    # [N, W, D]
        return _lstm_attention_join(rows, lead, obs, hidden_dim=self.hidden_dim, n_heads=self.n_heads,
                                    dropout=self.dropout, dtype=self.dtype, train=train)


class CNNLSTMEncoder(nn.Module):
    """CNN-LSTM: 1-D convolutions along the window's time axis (`conv_filters` filters each, kernel
    `conv_kernel`, "SAME" padding so the W rows stay W rows, each Conv -> ReLU), then the CLSTM's
    LSTM + self-attention + mean pool and the same join with every other obs entry. The window holds
    rows < t only, so a convolution across it reads nothing later."""

    hidden_dim: int = 256
    n_heads: int = 8
    conv_filters: tuple[int, ...] = (32, 64)
    conv_kernel: int = 3
    dropout: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, obs, *, train: bool = False):
        x, lead = _window_rows(obs, "cnn_lstm", self.dtype)                    # [N, W, D]
        for i, filters in enumerate(self.conv_filters):
            x = nn.Conv(int(filters), (int(self.conv_kernel),), padding="SAME", dtype=self.dtype,
                        param_dtype=jnp.float32, name=f"conv_{i}")(x)
            x = nn.relu(x)                                                      # [N, W, filters]
        return _lstm_attention_join(x, lead, obs, hidden_dim=self.hidden_dim, n_heads=self.n_heads,
                                    dropout=self.dropout, dtype=self.dtype, train=train)
