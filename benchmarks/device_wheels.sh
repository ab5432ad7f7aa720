#!/usr/bin/env bash
# Fetches, here, the wheels benchmarks/device_check.sh installs on the GPU machine, which has no package
# index: the pure-Python packages jaxtrade and the benchmarks need that its image lacks (its image holds
# the CUDA build of jax 0.11 with the nvidia libraries, flax, optax, orbax, chex, pandas, matplotlib,
# seaborn, absl, tqdm, protobuf, PyYAML, cloudpickle, six). Into .whl/ (git-ignored), for Python 3.12
# on x86-64; name .whl in the device run's `carry`.
#
# jaxlib and the CUDA plugin of our pinned jax are not fetched: each is far over the 64 MiB that a
# device run may carry, so the check runs on the image's jax (device_check.json records its version).
# JAX_WHEELS=1 fetches them anyway, for a machine without that limit.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl
PKGS=(ml-collections==1.1.0 tensorboardX==2.6.5 gymnax==1.0.1 gymnasium==1.3.0 farama-notifications==0.0.6)
if [ "${JAX_WHEELS:-0}" = 1 ]; then
  PKGS+=(jax==0.10.2 jaxlib==0.10.2 jax-cuda12-plugin==0.10.2 jax-cuda12-pjrt==0.10.2)
fi
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "${PKGS[@]}"
du -sh .whl
