"""Exact resume of the replay agents (DQN, DDPG, TD3, SAC) through `to_checkpoint` / `from_checkpoint`,
shared by their tests: what the loop's Orbax restore hands back, and the straight-against-resumed run."""

import jax
import jax.numpy as jnp
import numpy as np


def _is_key(x):
    return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def host(tree):
    """Host numpy copies of `tree` (typed PRNG keys as their key data)."""
    return jax.tree.map(lambda x: np.array(jax.random.key_data(x) if _is_key(x) else x), tree)


def round_trip(tree):
    """What Orbax and the loop's restore hand back: host numpy copies (typed keys as their key data),
    read back into the types of `tree`."""
    return jax.tree.map(lambda t, h: jax.random.wrap_key_data(h) if _is_key(t) else jnp.asarray(h, t.dtype),
                        tree, host(tree))


def assert_resume_is_bit_identical(agent, env_params, *, calls_before: int, calls_after: int):
    """`calls_before` calls of one device's iteration from seed 0, a checkpoint round trip, then
    `calls_after` calls straight on and the same from the restored checkpoint (into a state of seed 99):
    every metric of every call and every leaf of the final states equal. Returns (host copies of the
    restored checkpoint, taken before the iterations donate it; the straight final state; the
    straight metrics per call as host dicts; the resumed final state)."""
    devices = jax.devices()[:1]
    iterate = agent.make_iteration(devices)
    state = agent.init(0, env_params, devices)
    for _ in range(calls_before):
        state, _ = iterate(state, env_params)
    saved = round_trip(agent.to_checkpoint(state))
    saved_host = host(saved)
    straight, straight_metrics = state, []
    for _ in range(calls_after):
        straight, metrics = iterate(straight, env_params)
        straight_metrics.append(host(metrics))
    resumed = agent.from_checkpoint(agent.init(99, env_params, devices), saved)
    for i in range(calls_after):
        resumed, metrics = iterate(resumed, env_params)
        for name, value in host(metrics).items():
            np.testing.assert_array_equal(value, straight_metrics[i][name], err_msg=name)
    for a, b in zip(jax.tree.leaves(host(straight)), jax.tree.leaves(host(resumed)), strict=True):
        np.testing.assert_array_equal(a, b)
    return saved_host, straight, straight_metrics, resumed
