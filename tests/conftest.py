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

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(ROOT, ".pytest_cache", "jax-compilation"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
