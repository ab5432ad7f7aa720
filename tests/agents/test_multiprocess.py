"""2 processes x 2 CPU devices (jax.distributed, gloo collectives on 127.0.0.1) train exactly like
1 process x 4 devices. The test starts all three processes itself (tests/agents/multiprocess_worker.py):
the two that form the multi-process run and, meanwhile, the one-process reference with 4 devices, all
with the same XLA flags (codegen at optimization level 0: a third of the compile time, on both sides)."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from .multiprocess_worker import N_ENVS

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = int(os.environ.get("JAXTRADE_MULTIPROCESS_TIMEOUT_S", "120"))   # all workers, from their start
N_PROCESSES, LOCAL_DEVICES = 2, 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_env(device_count: int) -> dict:
    env = dict(os.environ)
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = (f"{flags} --xla_force_host_platform_device_count={device_count} "
                        "--xla_backend_optimization_level=0").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    for k in [k for k in env if k.lower().endswith("_proxy")]:        # 127.0.0.1 only
        del env[k]
    return env


def _tail(path: Path, n: int = 40) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if not ln.startswith("[Gloo]")]
    return "\n".join(lines[-n:])


def _unsupported(text: str) -> bool:
    """The worker died because this jax cannot run collectives across CPU processes."""
    return bool(re.search(r"(UNIMPLEMENTED|not (yet )?(supported|implemented))", text, re.I)
                and re.search(r"collective|gloo|multi-?process|distributed", text, re.I))


def _params(npz, prefix) -> dict:
    return {k[len(prefix):]: npz[k] for k in npz.files if k.startswith(prefix)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """-> {name: npz} for the reference ("one") and the two processes ("p0", "p1")."""
    tmp = tmp_path_factory.mktemp("multiprocess")
    address = f"127.0.0.1:{_free_port()}"
    jobs = {f"p{i}": (LOCAL_DEVICES, [f"--coordinator_address={address}", f"--num_processes={N_PROCESSES}",
                                      f"--process_id={i}"]) for i in range(N_PROCESSES)}
    jobs["one"] = (N_PROCESSES * LOCAL_DEVICES, [])
    procs = {}
    t0 = time.monotonic()
    try:
        for name, (device_count, args) in jobs.items():
            with open(tmp / f"{name}.log", "w") as log:
                cmd = [sys.executable, "-m", "tests.agents.multiprocess_worker", str(tmp / f"{name}.npz")]
                procs[name] = subprocess.Popen(
                    cmd + args, cwd=ROOT, env=_worker_env(device_count), stdout=log, stderr=subprocess.STDOUT)
        while any(p.poll() is None for p in procs.values()):    # the first to fail is the one to show
            if any(p.poll() not in (None, 0) for p in procs.values()) or time.monotonic() - t0 > TIMEOUT_S:
                break
            time.sleep(0.2)
        for name, p in procs.items():
            if p.poll() not in (None, 0):
                text = _tail(tmp / f"{name}.log")
                if _unsupported(text):
                    pytest.skip(f"jax {jax.__version__} cannot run CPU collectives across processes: {text}")
                pytest.fail(f"worker {name} exited with {p.returncode}:\n{text}")
        for name, p in procs.items():
            if p.poll() is None:
                pytest.fail(f"worker {name} still running after {TIMEOUT_S} s:\n{_tail(tmp / f'{name}.log')}")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    return {name: np.load(tmp / f"{name}.npz") for name in jobs}


def test_two_processes_agree_with_each_other(runs):
    for i in range(N_PROCESSES):
        w = runs[f"p{i}"]
        assert bool(w["identical"]), f"process {i}: replicas (or processes) drifted"
        assert int(w["offset"]) == i * LOCAL_DEVICES * N_ENVS, "global env offset"
    p0, p1 = (_params(runs[f"p{i}"], "param:") for i in range(N_PROCESSES))
    assert p0.keys() == p1.keys()
    for k in p0:
        np.testing.assert_array_equal(p0[k], p1[k], err_msg=k)


def test_two_processes_train_like_one_process_with_four_devices(runs):
    one = runs["one"]
    assert bool(one["identical"]) and int(one["offset"]) == 0
    init, final = _params(one, "init:"), _params(one, "param:")
    moved = max(float(np.max(np.abs(final[k] - v))) for k, v in init.items())
    assert moved > 1e-4, "the reference did not train: the comparison would be vacuous"
    for prefix, ref in (("init:", init), ("param:", final)):
        mine = _params(runs["p0"], prefix)
        assert mine.keys() == ref.keys()
        for k, v in ref.items():
            np.testing.assert_allclose(mine[k], v, rtol=1e-5, atol=1e-5, err_msg=prefix + k)


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
