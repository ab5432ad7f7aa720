"""Runs before anything imports jax: four forced CPU devices for the pmap tests, and one persistent
XLA compilation cache for the whole run.

The suite compiles the same programs many times over (the smoke config's training iteration in
process and in every `experiments.train` subprocess, the same backtests in many tests); jax's
persistent cache, shared by the xdist workers and inherited by subprocesses through the
environment, compiles each once. Its key holds the program, the XLA flags and the jax version, so a
cached executable is exactly the one a fresh compile would give.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The suite's time is mostly XLA's CPU compiles of PPO iterations (~25 s each at the default LLVM
# optimization on the 2-core CI machine); without LLVM's optimization passes they take about half as
# long and the small programs run ~1.4x slower, a net win for tests (BUILD_NOTES, "Test suite
# time"). The results do not change: these flags choose how the same HLO is lowered to machine code,
# not what it computes (no fast-math), and every test compares runs made under the same flags.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=4"
                           + " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
                           ).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(ROOT, ".pytest_cache", "jax-compilation"))
# Every program goes into the cache, not only those that took a second or more to compile (jax's
# default): the many small ones (backtests, env tables, metrics) were otherwise compiled again in every
# module (the fixture below drops them) and in every subprocess a test starts (the experiments.* commands
# after an in-process run of the same config). Measured on the shared 2-core machine (load 6-7), fresh
# cache, CPU seconds (user + sys), one run each: tests/train/test_train_loop.py 116.6 -> 91.1 (another
# run at the old threshold: 104.2; its 6 subprocesses load the reference run's programs),
# tests/test_readme_walk.py 57.4 -> 52.9, five tests/train modules in one process 184.8 -> 180.3, and no
# gain for tests/pipeline/test_pretrain.py (77.1 -> 79.4, at a higher load; its programs recur little).
# The cache stays small (155 entries, 0.9 MB for tests/live/test_runner.py).
# A compile served by the cache still fires jax's backend-compile event, so a test that counts compiles
# with it (tests/live/test_runner.py) sees a program compiled again either way.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

# Every compiled XLA:CPU program holds memory maps of its machine code (about 6,000 for the
# smoke config's training programs) until jax drops it, and jax keeps every program it compiled
# for the life of the process. An xdist worker runs half the suite, so without a release its map
# count grew past the kernel's vm.max_map_count (65,530 here and on CI) and the next mmap inside XLA
# failed: the worker died with a segfault in the cache write or an abort in the compile, and
# pytest-xdist's loadfile scheduling then hung waiting for the dead worker's files (BUILD_NOTES,
# "The worker crash"). Each module therefore releases what it compiled when it ends; a program a
# later module needs again comes back from the persistent cache above.
import gc  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

MAX_MAP_COUNT_FILE = "/proc/sys/vm/max_map_count"
MAPS_FILE = "/proc/self/maps"
MAP_SHARE_LIMIT = 0.6  # of vm.max_map_count, at a module's start


def memory_map_count():
    """(maps this process holds, the kernel's per-process limit), or None where /proc has neither."""
    try:
        with open(MAX_MAP_COUNT_FILE) as f:
            limit = int(f.read())
        with open(MAPS_FILE) as f:
            return sum(1 for _ in f), limit
    except OSError:
        return None


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    counted = memory_map_count()
    if counted is not None and counted[0] > MAP_SHARE_LIMIT * counted[1]:
        pytest.fail(f"this test process holds {counted[0]:,} memory maps of the kernel's limit of "
                    f"{counted[1]:,} (vm.max_map_count) before the module starts: compiled programs of "
                    "earlier modules are not being released, and XLA will fail its next mmap",
                    pytrace=False)
    yield
    jax = sys.modules.get("jax")
    if jax is not None:
        jax.clear_caches()
    gc.collect()
