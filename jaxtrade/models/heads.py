"""Policy and value heads: MLP (Dense -> ReLU -> LayerNorm) then a float32 output layer."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxtrade.models.distributions import Categorical, DiagGaussian
from jaxtrade.models.layers import LayerNorm


class _Trunk(nn.Module):
    hidden_dim: int
    n_layers: int
    dtype: Any

    @nn.compact
    def __call__(self, x):
        x = x.astype(self.dtype)
        for i in range(self.n_layers):
            x = nn.Dense(self.hidden_dim, dtype=self.dtype, param_dtype=jnp.float32, name=f"dense_{i}")(x)
            x = LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name=f"norm_{i}")(nn.relu(x))
        return x


class PolicyHead(nn.Module):
    """features [..., H] -> Categorical(logits [..., A]) or DiagGaussian(mean, log_std [..., A])."""

    action_dim: int
    discrete: bool = True
    hidden_dim: int = 256
    n_layers: int = 1
    init_log_std: float = -0.5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = _Trunk(self.hidden_dim, self.n_layers, self.dtype, name="trunk")(x)
        out = nn.Dense(self.action_dim, dtype=jnp.float32, param_dtype=jnp.float32,
                       kernel_init=nn.initializers.orthogonal(0.01), name="out")(x.astype(jnp.float32))
        if self.discrete:
            return Categorical(out)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,))
        return DiagGaussian(out, jnp.broadcast_to(log_std, out.shape))


class ValueHead(nn.Module):
    """features [..., H] -> value [...] (float32)."""

    hidden_dim: int = 256
    n_layers: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = _Trunk(self.hidden_dim, self.n_layers, self.dtype, name="trunk")(x)
        out = nn.Dense(1, dtype=jnp.float32, param_dtype=jnp.float32,
                       kernel_init=nn.initializers.orthogonal(float(np.sqrt(1.0))), name="out")
        return out(x.astype(jnp.float32))[..., 0]
