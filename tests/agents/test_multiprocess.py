"""2 processes x 2 CPU devices (jax.distributed, gloo collectives on 127.0.0.1) train exactly like
1 process x 4 devices: the test starts both processes itself (tests/agents/multiprocess_worker.py)."""

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

from .multiprocess_worker import N_ENVS, run

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = int(os.environ.get("JAXTRADE_MULTIPROCESS_TIMEOUT_S", "120"))   # both workers, from their start
N_PROCESSES, LOCAL_DEVICES = 2, 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_env() -> dict:
    env = dict(os.environ)
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={LOCAL_DEVICES}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    for k in [k for k in env if k.lower().endswith("_proxy")]:        # 127.0.0.1 only
        del env[k]
    return env


def _tail(path: Path, n: int = 40) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines()
             if not ln.startswith("[Gloo]")]
    return "\n".join(lines[-n:])


def _unsupported(text: str) -> bool:
    """The worker died because this jax cannot run collectives across CPU processes."""
    return bool(re.search(r"(UNIMPLEMENTED|not (yet )?(supported|implemented))", text, re.I)
                and re.search(r"collective|gloo|multi-?process|distributed", text, re.I))


def _params(npz, prefix="param:") -> dict:
    return {k[len(prefix):]: npz[k] for k in npz.files if k.startswith(prefix)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multiprocess")
    address = f"127.0.0.1:{_free_port()}"
    procs, logs = [], []
    t0 = time.monotonic()
    try:
        for i in range(N_PROCESSES):
            logs.append(tmp / f"worker{i}.log")
            with open(logs[-1], "w") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "tests.agents.multiprocess_worker", str(tmp / f"params{i}.npz"),
                     f"--coordinator_address={address}", f"--num_processes={N_PROCESSES}",
                     f"--process_id={i}"],
                    cwd=ROOT, env=_worker_env(), stdout=log, stderr=subprocess.STDOUT))
        # The one-process reference runs here (tests/conftest.py forces 4 CPU devices) meanwhile.
        assert jax.device_count() >= 4, "tests/conftest.py forces 4 host CPU devices"
        reference = run(devices=jax.devices()[:4])
        for i, p in enumerate(procs):
            left = TIMEOUT_S - (time.monotonic() - t0)
            try:
                rc = p.wait(timeout=max(left, 1))
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker {i} still running after {TIMEOUT_S} s:\n{_tail(logs[i])}")
            if rc != 0:
                text = _tail(logs[i])
                if _unsupported(text):
                    pytest.skip(f"jax {jax.__version__} cannot run CPU collectives across processes: {text}")
                pytest.fail(f"worker {i} exited with {rc}:\n{text}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    workers = [np.load(tmp / f"params{i}.npz") for i in range(N_PROCESSES)]
    return reference, workers, time.monotonic() - t0


def test_two_processes_agree_with_each_other(runs):
    _, workers, _ = runs
    for i, w in enumerate(workers):
        assert bool(w["identical"]), f"process {i}: replicas (or processes) drifted"
        assert int(w["offset"]) == i * LOCAL_DEVICES * N_ENVS, "global env offset"
    p0, p1 = (_params(w) for w in workers)
    assert p0.keys() == p1.keys()
    for k in p0:
        np.testing.assert_array_equal(p0[k], p1[k], err_msg=k)


def test_two_processes_train_like_one_process_with_four_devices(runs):
    (ref_init, ref_final, ref_offset, ref_identical), workers, _ = runs
    assert ref_identical and ref_offset == 0
    moved = max(float(np.max(np.abs(ref_final[k] - v))) for k, v in ref_init.items())
    assert moved > 1e-4, "the reference did not train: the comparison would be vacuous"
    for name, ref in (("init:", ref_init), ("param:", ref_final)):
        mine = _params(workers[0], name)
        assert mine.keys() == ref.keys()
        for k, v in ref.items():
            np.testing.assert_allclose(mine[k], v, rtol=1e-5, atol=1e-5, err_msg=name + k)
