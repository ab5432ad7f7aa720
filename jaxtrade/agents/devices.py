"""Device bookkeeping for every agent: which devices, laying trees out on a leading device axis,
taking device 0's copy, and checking that replicas never drifted. The algorithms never see a device axis.

A tree "on the devices" has a leading axis of len(devices) on every leaf, sharded one slice per device
(`jax.pmap`'s layout). `devices` are always THIS process's devices.

Multi-process runs (several hosts, or several processes on one machine) follow jax's SPMD model:
1. Every process calls `initialize_distributed(...)` before anything touches a device (CPU runs use
   gloo collectives over TCP).
2. Every process runs the same code: `select_devices` gives it its local devices, and its tree on the
   devices holds only their slices (leading axis = local device count); `put_sharded` places it.
3. The one pmapped function runs over `pmap_devices(devices)`: the same number of devices from every
   process, grouped by process. Collectives (`psum`, `pmean`) span all of them and
   `jax.lax.axis_index` is the global device index, so env g is the same env whatever the split into
   processes: this process's first env is `global_env_offset(n_envs, devices)`.
4. The pmapped function returns, on every process, its local slices again; `first_device` and
   `identical_across_devices` only ever read shards this process can address.
5. Around the pmap (`jaxtrade.train`): process 0 alone writes the workdir's logs, reports and
   registry (`is_main_process`); every process checkpoints its own slices as one global array per
   leaf (`to_global` / `global_like` / `from_global`, Orbax's multi-process save: one commit);
   `layout()` is what a checkpoint records so that a resume on another layout is refused by name;
   `any_process` turns a stop request on one process into the same decision on all of them, and
   `barrier` makes every process wait for a file process 0 writes.
One process is the special case process_count() == 1, with every function behaving as before.
"""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "devices"

_FLAGS = "--coordinator_address, --num_processes, --process_id"
_JOINED = None      # (coordinator_address, num_processes, process_id) once initialize_distributed joined


def initialize_distributed(coordinator_address: str | None, num_processes: int | None,
                           process_id: int | None, local_device_ids=None, *, timeout_s: int = 120,
                           shutdown_timeout_s: int = 3600) -> None:
    """Joins this process to a multi-process run (call it before anything touches a device).

    coordinator_address: "host:port" of process 0, which starts the coordinator service there.
    All three None: jax finds them in a scheduler's environment (SLURM, Open MPI, Kubernetes), and
    it is an error when none is there. On CPU the cross-process collectives are gloo's. Idempotent: a
    second call with the same arguments does nothing, with different ones it raises. Failures name
    the flags to fix. shutdown_timeout_s: how long a process that finished waits at exit for the others
    (the other processes of a training run end before process 0's final report).
    """
    global _JOINED
    auto = coordinator_address is None and num_processes is None and process_id is None
    if jax.distributed.is_initialized():
        joined = _JOINED or (None, jax.process_count(), jax.process_index())
        if not auto and (joined[1:] != (num_processes, process_id)
                         or joined[0] not in (None, coordinator_address)):
            raise RuntimeError(
                f"initialize_distributed: already joined {joined[0] or 'a run'} as process {joined[2]} of "
                f"{joined[1]}; cannot rejoin {coordinator_address} as process {process_id} of "
                f"{num_processes} ({_FLAGS})")
        return
    if not auto:
        if not isinstance(num_processes, int) or num_processes < 1:
            raise ValueError(f"--num_processes={num_processes!r} must be a positive int")
        if not isinstance(process_id, int) or not 0 <= process_id < num_processes:
            raise ValueError(f"--process_id={process_id!r} must be an int in "
                             f"[0, --num_processes={num_processes})")
        if not coordinator_address or ":" not in coordinator_address:
            raise ValueError(f"--coordinator_address={coordinator_address!r} must be host:port of "
                             "process 0")
    platforms = (jax.config.jax_platforms or "").split(",")
    if platforms == [""] or "cpu" in platforms:      # harmless where another backend wins
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                                   process_id=process_id, local_device_ids=local_device_ids,
                                   initialization_timeout=timeout_s,
                                   shutdown_timeout_seconds=shutdown_timeout_s)
    except Exception as e:  # noqa: BLE001 -- re-raised with the flags that set these values
        where = ("from the scheduler's environment (none found: pass the flags)" if auto else
                 f"(coordinator_address={coordinator_address!r}, num_processes={num_processes}, "
                 f"process_id={process_id})")
        raise RuntimeError(
            f"jax.distributed.initialize {where} failed: {e}. Check {_FLAGS}: every "
            "process needs the same address and count, a distinct id, and process 0 must be able to bind "
            "the port; initialize before anything else uses jax.") from e
    _JOINED = (coordinator_address, jax.process_count(), jax.process_index())


def is_multiprocess() -> bool:
    return jax.process_count() > 1


def is_main_process() -> bool:
    """True on process 0 (and in a one-process run): the one process that writes logs and reports."""
    return jax.process_index() == 0


def layout(devices) -> dict:
    """{"processes": P, "devices_per_process": D} of a run over `devices` (this process's) on every
    process: what a `latest` checkpoint records, and must find again to restore."""
    return {"processes": jax.process_count(), "devices_per_process": len(select_devices(devices=devices))}


def check_layout(saved: dict | None, devices, where: str) -> None:
    """ValueError naming both layouts unless checkpoint `where`, written on `saved` (None: a checkpoint
    from before layouts were recorded, one process), restores on this run's layout."""
    saved = saved or {"processes": 1}
    running = layout(devices)
    if saved["processes"] != running["processes"] or saved.get("devices_per_process",
                                                               running["devices_per_process"]) != \
            running["devices_per_process"]:
        raise ValueError(
            f"{where} was saved by {saved['processes']} process(es) x "
            f"{saved.get('devices_per_process', '?')} device(s); this run is {running['processes']} "
            f"process(es) x {running['devices_per_process']} device(s). Resume it with the same "
            "--num_processes and devices per process (train.n_devices, XLA_FLAGS), or start over with "
            "--fresh_start")


def any_process(flag: bool) -> bool:
    """True on every process if `flag` is True on any (a collective: every process calls it at the same
    point, e.g. once per iteration for a stop request). One process: `flag`."""
    if not is_multiprocess():
        return bool(flag)
    from jax.experimental import multihost_utils
    everyone = multihost_utils.process_allgather(np.asarray([int(bool(flag))], np.int32))
    return bool(np.any(np.asarray(everyone)))


def select_devices(n_devices: int | None = None, devices=None) -> list:
    """`devices` if given, else the first `n_devices` local devices (default: all of them).

    Always this process's devices: a multi-process run gives each process the same count.
    """
    if devices is not None:
        devices = list(devices)
        foreign = [d for d in devices if d.process_index != jax.process_index()]
        if foreign:
            raise ValueError(f"devices {foreign} belong to other processes; pass this process's devices "
                             "(jax.local_devices()), the pmap spans the others")
        return devices
    local = jax.local_devices()
    if n_devices is not None and not 1 <= n_devices <= len(local):
        raise ValueError(f"train.n_devices={n_devices} must be between 1 and the {len(local)} local "
                         "device(s)")
    return local if n_devices is None else local[:n_devices]


def pmap_devices(devices) -> list:
    """The devices to give `jax.pmap(devices=...)` so it spans every process: the positions of this
    process's `devices` among its local devices, taken on every process, grouped by process index.

    One process: `devices` itself. Every process must call it with the same count of devices.
    """
    devices = select_devices(devices=devices)
    if not is_multiprocess():
        return devices
    local = jax.local_devices()
    positions = [local.index(d) for d in devices]
    out = []
    for p in range(jax.process_count()):
        theirs = sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)
        if len(theirs) != len(local):
            raise ValueError(f"process {p} has {len(theirs)} devices, this one {len(local)}: every "
                             "process needs the same local device count (XLA_FLAGS / local_device_ids)")
        out.extend(theirs[i] for i in positions)
    return out


def global_device_offset(devices) -> int:
    """Global index (pmap's `jax.lax.axis_index`) of this process's first device."""
    return pmap_devices(devices).index(select_devices(devices=devices)[0])


def global_env_offset(n_envs: int, devices) -> int:
    """Global index of this process's first env: envs are numbered device-major over every process."""
    return global_device_offset(devices) * n_envs


def put_sharded(tree, devices):
    """Places a tree whose leaves already have the leading (local) device axis, one slice per device.

    Multi-process: each process places only its slices; the pmap assembles the global array.
    """
    devices = select_devices(devices=devices)
    sharding = NamedSharding(Mesh(np.asarray(devices), (AXIS,)), PartitionSpec(AXIS))
    return jax.device_put(tree, sharding)


def put_replicated(tree, devices):
    """Stacks `tree` len(devices) times on a new leading device axis and places it."""
    n = len(devices)
    return put_sharded(jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), tree), devices)


def local_slices(global_tree, devices):
    """This process's slices of a tree whose leaves have the GLOBAL device axis (len(pmap_devices)),
    e.g. built identically on every process; placed with `put_sharded`."""
    lo = global_device_offset(devices)
    n = len(select_devices(devices=devices))
    return put_sharded(jax.tree.map(lambda x: x[lo:lo + n], global_tree), devices)


def _addressable(leaf) -> np.ndarray:
    """Host copy of the slices of `leaf` this process holds, in device-axis order [n_local, ...]."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        shards = sorted(leaf.addressable_shards, key=lambda s: s.index[0].start or 0)
        return np.concatenate([np.asarray(s.data) for s in shards])
    return np.asarray(jax.device_get(leaf))


def first_device(tree):
    """This process's first device's slice of every leaf of a tree on the devices (the one way to
    unreplicate). Replicated leaves are identical on every device, so this is device 0's copy."""
    def first(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            shard = min(x.addressable_shards, key=lambda s: s.index[0].start or 0)
            return shard.data[0]
        return x[0]
    return jax.tree.map(first, tree)


def _global_sharding(devices) -> NamedSharding:
    return NamedSharding(Mesh(np.asarray(pmap_devices(devices)), (AXIS,)), PartitionSpec(AXIS))


def to_global(tree, devices):
    """A host tree of THIS process's slices (leaves [n_local, ...], numpy) -> jax.Arrays with the global
    device axis [n_processes * n_local, ...] over every process's devices, each process holding its own
    slices: what Orbax's multi-process save writes, every process its shards, one commit."""
    sharding = _global_sharding(devices)
    n = len(pmap_devices(devices))
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(
        sharding, np.asarray(x), (n,) + np.shape(x)[1:]), tree)


def global_like(tree, devices):
    """jax.ShapeDtypeStruct leaves of `to_global(tree, devices)` (what a multi-process restore asks
    Orbax for: every process reads its own slices)."""
    sharding = _global_sharding(devices)
    n = len(pmap_devices(devices))
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct((n,) + np.shape(x)[1:], np.asarray(x).dtype,
                                                       sharding=sharding), tree)


def from_global(tree):
    """This process's slices of global arrays (from `to_global` or a restore), as numpy [n_local, ...]."""
    return jax.tree.map(_addressable, tree)


def barrier(name: str) -> None:
    """Every process waits here until all have arrived (a no-op in a one-process run): e.g. process 0
    moved a workdir aside before any process writes into it."""
    if is_multiprocess():
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def identical_across_devices(tree, across_processes: bool = True) -> bool:
    """True if every leaf is bit-identical on every device (leading device axis).

    Multi-process: compares this process's devices, then (across_processes, a collective every process
    must call) a hash of each leaf's first slice with every other process's.
    """
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        x = _addressable(leaf)
        if not all(np.array_equal(x[i], x[0]) for i in range(1, x.shape[0])):
            return False
        digest.update(np.ascontiguousarray(x[0]).tobytes())
    if across_processes and is_multiprocess():
        from jax.experimental import multihost_utils
        mine = np.frombuffer(digest.digest(), np.uint32)
        everyone = np.asarray(multihost_utils.process_allgather(mine))        # [n_processes, 8]
        return bool(np.all(everyone == everyone[0]))
    return True
