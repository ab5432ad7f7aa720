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
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
