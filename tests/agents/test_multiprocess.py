"""The device layout helpers of `jaxtrade.agents.devices` in one process, and their flag errors.

That 2 processes x 2 CPU devices train like 1 process x 4 devices is tested end to end, through
`experiments.train`, the loop, checkpoints and the report, by tests/train/test_multiprocess_run.py
(which replaced this file's own 2 x 2 agent-level run in issue 28)."""

import jax
import numpy as np
import pytest


def test_layout_helpers_and_flag_errors():
    from jaxtrade.agents import devices as dev
    local = jax.local_devices()[:4]
    assert dev.pmap_devices(local) == local and dev.global_env_offset(8, local[2:]) == 0
    tree = {"w": np.arange(8.0).reshape(4, 2)}
    np.testing.assert_array_equal(dev.first_device(dev.local_slices(tree, local))["w"], [0.0, 1.0])
    assert dev.identical_across_devices(dev.put_replicated(tree, local))
    assert not dev.identical_across_devices(dev.put_sharded(tree, local))
    with pytest.raises(ValueError, match="--process_id=2"):
        dev.initialize_distributed("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match="--coordinator_address='127.0.0.1'"):
        dev.initialize_distributed("127.0.0.1", 2, 0)


def test_checkpoint_layout_and_stop_agreement_in_one_process():
    from jaxtrade.agents import devices as dev
    local = jax.local_devices()[:4]
    assert dev.layout(local[:2]) == {"processes": 1, "devices_per_process": 2}
    dev.check_layout({"processes": 1, "devices_per_process": 2}, local[:2], "here")
    dev.check_layout(None, local[:2], "an old checkpoint")          # before layouts: one process
    with pytest.raises(ValueError, match=r"here was saved by 2 process\(es\) x 2 device\(s\); this run is 1 "
                                         r"process\(es\) x 4 device\(s\)"):
        dev.check_layout({"processes": 2, "devices_per_process": 2}, local, "here")
    assert dev.any_process(True) and not dev.any_process(False)
    tree = {"w": np.arange(8.0, dtype=np.float32).reshape(4, 2)}
    np.testing.assert_array_equal(dev.from_global(dev.to_global(tree, local))["w"], tree["w"])
    assert dev.global_like(tree, local)["w"].shape == (4, 2)


def test_process_settings_from_flags_environment_and_schedulers():
    from experiments.common import distributed_settings, worker_of
    assert distributed_settings(None, None, None, environ={}) is None
    assert distributed_settings("h:1", 2, 1, environ={}) == ("h:1", 2, 1)
    with pytest.raises(ValueError, match="missing --process_id"):
        distributed_settings("h:1", 2, None, environ={})
    env = {"JAXTRADE_COORDINATOR_ADDRESS": "h:1", "JAXTRADE_NUM_PROCESSES": "2", "JAXTRADE_PROCESS_ID": "1"}
    assert distributed_settings(None, None, None, environ=env) == ("h:1", 2, 1)
    with pytest.raises(ValueError, match="JAXTRADE_PROCESS_ID not"):
        distributed_settings(None, None, None, environ={k: v for k, v in env.items() if "ID" not in k})
    assert distributed_settings(None, None, None, environ={"SLURM_NTASKS": "4", "SLURM_PROCID": "3"}) == \
        (None, None, None)                                           # jax reads SLURM's node list itself
    assert distributed_settings(None, None, None, environ={"SLURM_NTASKS": "1"}) is None
    assert worker_of(None, None, environ={}) == (1, 0)
    assert worker_of(None, None, environ={"SLURM_NTASKS": "4", "SLURM_PROCID": "3"}) == (4, 3)
    assert worker_of(None, None, environ={"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}) == (2, 1)
    with pytest.raises(ValueError, match=r"process id 2 must be in \[0, 2\)"):
        worker_of(2, 2, environ={})
