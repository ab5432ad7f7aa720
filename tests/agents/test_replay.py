"""The replay buffer (agents/replay.py): wraparound, sampling only written slots, per-device shards."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.agents import replay


def _example():
    return {"obs": jnp.zeros((2,), jnp.float32), "action": jnp.zeros((), jnp.int32)}


def _batch(values):
    v = jnp.asarray(values, jnp.int32)
    return {"obs": jnp.stack([v, -v], axis=1).astype(jnp.float32), "action": v}


def test_add_wraps_around_and_overwrites_the_oldest():
    buf = replay.init(_example(), 5)
    add = jax.jit(replay.add)
    buf = add(buf, _batch([1, 2, 3]))
    assert (int(buf.index), int(buf.size)) == (3, 3)
    np.testing.assert_array_equal(buf.data["action"], [1, 2, 3, 0, 0])
    buf = add(buf, _batch([4, 5, 6]))          # slots 3, 4, then 0
    assert (int(buf.index), int(buf.size)) == (1, 5)
    np.testing.assert_array_equal(buf.data["action"], [6, 2, 3, 4, 5])
    buf = add(buf, _batch([7, 8, 9, 10]))      # slots 1, 2, 3, 4
    assert (int(buf.index), int(buf.size)) == (0, 5)
    np.testing.assert_array_equal(buf.data["action"], [6, 7, 8, 9, 10])
    np.testing.assert_array_equal(buf.data["obs"][:, 1], -np.array([6, 7, 8, 9, 10]))
    with pytest.raises(ValueError, match="at least one iteration"):
        replay.add(buf, _batch(range(6)))


def test_sampling_reads_written_slots_only_and_all_of_them():
    buf = replay.add(replay.init(_example(), 16), _batch([1, 2, 3, 4, 5]))     # 11 slots unwritten (0)
    draw = jax.jit(jax.vmap(lambda k: replay.sample(buf, k, 64)["action"]))
    drawn = np.asarray(draw(jax.random.split(jax.random.key(0), 200))).ravel()  # 12,800 samples
    assert set(np.unique(drawn)) == {1, 2, 3, 4, 5}
    counts = np.bincount(drawn, minlength=6)[1:]
    np.testing.assert_allclose(counts / drawn.size, 0.2, atol=0.02)             # uniform
    full = replay.add(buf, _batch(range(6, 18)))                                # wrapped: every slot
    drawn = np.asarray(jax.vmap(lambda k: replay.sample(full, k, 64)["action"])(
        jax.random.split(jax.random.key(1), 50))).ravel()
    assert set(np.unique(drawn)) == set(range(2, 18))                           # 1 was overwritten


def test_each_device_holds_and_samples_its_own_shard():
    n_dev = 4
    devices = jax.devices()[:n_dev]

    def step(buf, key, first):
        d = jax.lax.axis_index("devices")
        buf = replay.add(buf, _batch(100 * (d + 1) + first + jnp.arange(3)))
        return buf, replay.sample(buf, key, 256)["action"]

    run = jax.pmap(step, axis_name="devices", devices=devices, static_broadcasted_argnums=2)
    bufs = jax.tree.map(lambda x: jnp.broadcast_to(x, (n_dev,) + x.shape), replay.init(_example(), 8))
    keys = jnp.stack([jax.random.key(7)] * n_dev)                 # the same key on every device
    bufs, _ = run(bufs, keys, 0)
    bufs, drawn = run(bufs, keys, 3)
    np.testing.assert_array_equal(bufs.size, 6)
    for d in range(n_dev):
        own = 100 * (d + 1) + np.arange(6)
        np.testing.assert_array_equal(bufs.data["action"][d, :6], own)
        assert set(np.unique(drawn[d])) == set(own)


def test_sizes_and_host_buffers():
    ex = {"obs": jax.ShapeDtypeStruct((3, 2), jnp.float32), "mask": jax.ShapeDtypeStruct((4,), bool)}
    assert replay.transition_bytes(ex) == 3 * 2 * 4 + 4
    host = replay.host_zeros(ex, (2, 5, 10))                      # devices, members, capacity
    assert host.data["obs"].shape == (2, 5, 10, 3, 2) and host.index.shape == (2, 5)
    assert replay.nbytes(host) == 2 * 5 * (10 * 28 + 8)
    cleared = replay.clear(replay.add(replay.init(ex, 10), jax.tree.map(
        lambda s: jnp.ones((4,) + s.shape, s.dtype), ex)))
    assert int(cleared.size) == 0 and not np.any(cleared.data["obs"])
