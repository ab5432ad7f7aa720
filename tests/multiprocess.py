"""Starting and stopping the processes of a multi-process test on 127.0.0.1 (one helper for every
such test): free ports, each process's environment (its own forced CPU device count, the suite's XLA
flags, no proxies), one process group per process so that the end of a test kills everything it
started, and the first failure shown with the tail of its log."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = int(os.environ.get("JAXTRADE_MULTIPROCESS_TIMEOUT_S", "240"))   # one launch, from its start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env(device_count: int, **extra) -> dict:
    """The environment of one process: `device_count` forced CPU devices, the suite's other XLA flags
    (and its compilation cache), the repository first on PYTHONPATH, no proxy (127.0.0.1 only)."""
    env = dict(os.environ)
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={device_count}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    for k in [k for k in env if k.lower().endswith("_proxy")]:
        del env[k]
    env.update({k: str(v) for k, v in extra.items()})
    return env


def tail(path: Path, n: int = 40) -> str:
    lines = [ln for ln in Path(path).read_text(errors="replace").splitlines() if not ln.startswith("[Gloo]")]
    return "\n".join(lines[-n:])


class Launches:
    """A context of launched processes: `processes(name, args, processes=P, devices=D)` starts P
    processes of `python args...` (with the coordinator flags when P > 1; `private_ranks`: those
    started with umask 077; `ids`: a subset of the ids); `wait(procs)` -> their stdouts, failing on
    the first non-zero exit with its log. On exit every process group still alive is killed."""

    def __init__(self, tmp: Path):
        self.tmp = Path(tmp)
        self.started: list[subprocess.Popen] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.started:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, 9)
                except ProcessLookupError:
                    pass
                p.wait()
        return False

    def processes(self, name: str, args, *, processes: int, devices: int, private_ranks=(1,),
                  coordinator: bool = True, env=None, ids=None) -> list[subprocess.Popen]:
        """ids: start only these process ids (default all of them; e.g. one now, the other later)."""
        address = f"127.0.0.1:{free_port()}"
        procs = []
        for i in range(processes) if ids is None else ids:
            dist = []
            if processes > 1:
                dist = ([f"--coordinator_address={address}"] if coordinator else []) + [
                    f"--num_processes={processes}", f"--process_id={i}"]
            umask = 0o077 if (processes > 1 and i in private_ranks) else 0o022
            log = open(self.tmp / f"{name}.p{i}.log", "w")
            out = open(self.tmp / f"{name}.p{i}.out", "w")
            # umask through the shell: no preexec_fn, whose Python code in a forked child of a
            # multithreaded (jax) process can deadlock
            cmd = ["/bin/sh", "-c", f"umask {umask:03o} && exec \"$0\" \"$@\"", sys.executable, *args, *dist]
            p = subprocess.Popen(cmd, cwd=ROOT, env=worker_env(devices, **(env or {})), stdout=out,
                                 stderr=log, start_new_session=True)
            p.name, p.log, p.out = f"{name}.p{i}", log.name, out.name
            log.close()
            out.close()
            procs.append(p)
            self.started.append(p)
        return procs

    def wait(self, procs, timeout: float = TIMEOUT_S) -> list[str]:
        import pytest
        t0 = time.monotonic()
        while any(p.poll() is None for p in procs):
            bad = [p for p in procs if p.poll() not in (None, 0)]
            if bad or time.monotonic() - t0 > timeout:
                break
            time.sleep(0.1)
        for p in procs:
            if p.poll() not in (None, 0):
                pytest.fail(f"{p.name} exited with {p.returncode}:\n{tail(p.log)}")
        for p in procs:
            if p.poll() is None:
                pytest.fail(f"{p.name} still running after {timeout} s:\n{tail(p.log)}")
        return [stdout(p) for p in procs]


def stdout(p) -> str:
    """What process `p` printed, less gloo's connection lines."""
    return "\n".join(ln for ln in Path(p.out).read_text().splitlines() if not ln.startswith("[Gloo]"))


def wait_for(path: Path, procs, launches: Launches, timeout: float = TIMEOUT_S) -> None:
    """Returns once `path` exists; fails (with the logs) if a process ended first or time ran out."""
    import pytest
    t0 = time.monotonic()
    while not Path(path).exists():
        if any(p.poll() is not None for p in procs) or time.monotonic() - t0 > timeout:
            shown = "\n".join(f"--- {p.name} ({p.poll()}):\n{tail(p.log)}" for p in procs)
            pytest.fail(f"{path} never appeared:\n{shown}")
        time.sleep(0.02)


class InThread:
    """fn(*args, **kwargs) in a thread of this process, meanwhile (a one-process reference beside the
    launched processes); `join()` returns its result or raises its exception."""

    def __init__(self, fn, *args, **kwargs):
        self._out: dict = {}

        def target():
            try:
                self._out["result"] = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 -- re-raised by join()
                self._out["error"] = e

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def join(self):
        self._thread.join()
        if "error" in self._out:
            raise self._out["error"]
        return self._out["result"]
