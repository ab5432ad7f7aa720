"""A replay buffer in device memory: a ring of transitions, pure and jittable, one per device shard.

    buffer = init(example, capacity)           # leaves [capacity, ...] of zeros, nothing written
    buffer = add(buffer, batch)                # batch leaves [n, ...]: n transitions, oldest overwritten
    batch = sample(buffer, key, batch_size)    # leaves [batch_size, ...], uniform over written slots

1. A transition is any pytree (`example` gives one, unbatched); the buffer is a `Replay` NamedTuple
   whose `data` has every leaf with a leading [capacity] axis, plus int32 scalars `index` (the next
   slot to write) and `size` (how many slots hold a transition, <= capacity).
2. `add` writes the n transitions of a batch (n <= capacity, a static shape) to slots index,
   index + 1, ... modulo capacity: past the end it wraps around and overwrites the oldest.
3. Slots fill in order from 0, so the written ones are always [0, size): `sample` draws slot
   indices uniformly from them and never reads an unwritten slot. It needs size >= 1 (callers gate
   their updates on a number of transitions written, e.g. DQN's learning_starts).
4. A pure pytree: under the agents' `jax.pmap` every device holds its own buffer (its own envs'
   transitions, its own samples), and a population's `vmap` gives every member its own.
5. Memory, and the size of a checkpoint that saves it: `transition_bytes(example) * capacity` per
   buffer (`nbytes(buffer)` for a built one), times devices and population members.

Why not flashbax: flashbax 0.1.3 (the current release) does run on jax 0.10.2 (its item buffer's
add and sample work), but it is not a dependency of this project and requires tensorstore, and what
the agents need is the forty lines below: a fixed per-device layout whose every leaf is a plain
array (Orbax saves it as it is; resume is bit for bit) and an explicit "written slots" rule.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Replay(NamedTuple):
    data: Any            # pytree of transitions, leaves [capacity, ...]
    index: jax.Array     # int32: the next slot `add` writes
    size: jax.Array      # int32: slots written so far, capped at capacity


def _zeros(example, lead: tuple, xp):
    """Zeros with leading axes `lead` for every leaf of `example` (arrays or ShapeDtypeStructs)."""
    return jax.tree.map(lambda x: xp.zeros(lead + tuple(x.shape), x.dtype), example)


def init(example, capacity: int) -> Replay:
    """An empty buffer of `capacity` transitions shaped like `example` (one transition, unbatched)."""
    if capacity < 1:
        raise ValueError(f"replay capacity must be >= 1, got {capacity}")
    return Replay(_zeros(example, (int(capacity),), jnp), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def host_zeros(example, lead: tuple) -> Replay:
    """Empty buffers as host numpy arrays with leading axes `lead` (e.g. [n_devices, capacity] or
    [n_devices, K, capacity]): placed with `devices.put_sharded`, each device's slice goes straight
    to it, never through one device holding every device's buffer."""
    counters = np.zeros(lead[:-1], np.int32)
    return Replay(_zeros(example, tuple(lead), np), counters, counters.copy())


def capacity(buffer: Replay) -> int:
    return int(jax.tree.leaves(buffer.data)[0].shape[0])


def add(buffer: Replay, batch) -> Replay:
    """`buffer` with the transitions of `batch` (leaves [n, ...], n <= capacity) written at
    index, index + 1, ... (mod capacity)."""
    cap = capacity(buffer)
    n = int(jax.tree.leaves(batch)[0].shape[0])
    if n > cap:
        raise ValueError(f"replay: adding {n} transitions at once to a buffer of {cap}; the buffer "
                         "must hold at least one iteration's transitions (n_envs * n_steps)")
    slots = (buffer.index + jnp.arange(n, dtype=jnp.int32)) % cap
    data = jax.tree.map(lambda d, x: d.at[slots].set(x.astype(d.dtype)), buffer.data, batch)
    return Replay(data, (buffer.index + n) % cap, jnp.minimum(buffer.size + n, cap).astype(jnp.int32))


def sample(buffer: Replay, key: jax.Array, batch_size: int):
    """`batch_size` transitions drawn uniformly, with replacement, from the written slots [0, size)."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[idx], buffer.data)


def clear(buffer: Replay) -> Replay:
    """A buffer of the same shapes with nothing written (zeros, index = size = 0), as host numpy
    arrays (placed with `devices.put_sharded`: every leading axis of `buffer` is kept)."""
    return jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), buffer)


def transition_bytes(example) -> int:
    """Bytes one transition (arrays or ShapeDtypeStructs, unbatched) takes in the buffer."""
    return int(sum(np.dtype(x.dtype).itemsize * math.prod(x.shape) for x in jax.tree.leaves(example)))


def nbytes(buffer: Replay) -> int:
    """Bytes the buffer's arrays take (every leading axis included: devices, members, capacity)."""
    return int(sum(x.size * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(buffer)))
