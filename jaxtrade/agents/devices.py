"""Device bookkeeping for every agent: which devices, laying trees out on a leading device axis,
taking device 0's copy, and checking that replicas never drifted. The algorithms never see a device axis.

A tree "on the devices" has a leading axis of len(devices) on every leaf, sharded one slice per device
(`jax.pmap`'s layout).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "devices"


def select_devices(n_devices: int | None = None, devices=None) -> list:
    """`devices` if given, else the first `n_devices` local devices (default: all of them)."""
    if devices is not None:
        return list(devices)
    local = jax.local_devices()
    if n_devices is not None and not 1 <= n_devices <= len(local):
        raise ValueError(f"train.n_devices={n_devices} must be between 1 and the {len(local)} local "
                         "device(s)")
    return local if n_devices is None else local[:n_devices]


def put_sharded(tree, devices):
    """Places a tree whose leaves already have the leading device axis, one slice per device."""
    sharding = NamedSharding(Mesh(np.asarray(devices), (AXIS,)), PartitionSpec(AXIS))
    return jax.device_put(tree, sharding)


def put_replicated(tree, devices):
    """Stacks `tree` len(devices) times on a new leading device axis and places it."""
    n = len(devices)
    return put_sharded(jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), tree), devices)


def first_device(tree):
    """Device 0's slice of every leaf of a tree on the devices (the one way to unreplicate)."""
    return jax.tree.map(lambda x: x[0], tree)


def identical_across_devices(tree) -> bool:
    """True if every leaf is bit-identical on every device (leading device axis)."""
    for leaf in jax.tree.leaves(tree):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        x = np.asarray(jax.device_get(leaf))
        if not all(np.array_equal(x[i], x[0]) for i in range(1, x.shape[0])):
            return False
    return True
