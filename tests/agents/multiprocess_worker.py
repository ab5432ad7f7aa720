"""One process of a multi-process PPO run, started by tests/agents/test_multiprocess.py.

python tests/agents/multiprocess_worker.py OUT.npz [--coordinator_address=127.0.0.1:PORT
    --num_processes=2 --process_id=I] [--seed=S] [--n_iter=N]

Trains N iterations of a tiny PPO config on the constant probe over every process's devices and writes
this process's first-device params (flattened 'a/b/c' keys) to OUT.npz, plus `offset` (its global env
offset) and `identical` (its replicas and the other processes' agree). The test also starts it
without the coordinator flags for the one-process reference. Every device decision goes through
jaxtrade.agents.devices.
"""

from __future__ import annotations

import argparse
import sys

N_ENVS = 4          # per device
N_ITER = 2


def config(seed: int):
    from tests.agents.ppo.helpers import tiny_config
    cfg = tiny_config(n_envs=N_ENVS, n_steps=4, n_minibatches=2, update_epochs=1, critic_epochs=0)
    cfg.model.dropout = 0.1        # the default; no PPO pass applies it
    cfg.seed = seed
    return cfg


def run(seed: int = 3, n_iter: int = N_ITER, devices=None):
    """-> (initial and final flat params of the first local device, this process's global env offset,
    params and optimizer state identical on every device of every process)."""
    import jax

    from jaxtrade.agents import devices as dev
    from jaxtrade.agents import ppo
    from jaxtrade.envs.probes import make_probe

    env, env_params = make_probe("constant", episode_length=4)
    cfg = config(seed)
    local = dev.select_devices(devices=devices)
    agent = ppo.make(cfg, env)
    carry = agent.init(seed, env_params, local)
    init = _flat(jax.device_get(dev.first_device(carry.train_state.params)))
    iterate = agent.make_iteration()                          # spans every process's devices
    for _ in range(n_iter):
        carry, metrics = iterate(carry, env_params)
    jax.block_until_ready(carry)
    env_steps = float(dev.first_device(metrics["env_steps"]))
    expected = 4 * N_ENVS * len(dev.pmap_devices(local))
    assert env_steps == expected, f"env_steps {env_steps} != {expected}: the pmap did not span every process"
    final = _flat(jax.device_get(dev.first_device(carry.train_state.params)))
    identical = ppo.params_identical_across_devices(carry)    # collective: every process calls it
    return init, final, dev.global_env_offset(N_ENVS, local), identical


def _flat(params) -> dict:
    import jax
    import numpy as np
    return {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
            for path, v in jax.tree_util.tree_flatten_with_path(params)[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--coordinator_address")
    p.add_argument("--num_processes", type=int)
    p.add_argument("--process_id", type=int)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--n_iter", type=int, default=N_ITER)
    args = p.parse_args(argv)

    from jaxtrade.agents import devices as dev
    if args.coordinator_address is not None:
        for _ in range(2):                                         # the second call is a no-op
            dev.initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
    import jax
    import numpy as np
    print(f"process {jax.process_index()}/{jax.process_count()}: local {jax.local_devices()}, "
          f"global {jax.devices()}", flush=True)
    init, final, offset, identical = run(args.seed, args.n_iter)
    np.savez(args.out, offset=np.int64(offset), identical=np.bool_(identical),
             **{f"init:{k}": v for k, v in init.items()}, **{f"param:{k}": v for k, v in final.items()})
    if args.coordinator_address is not None:
        jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
