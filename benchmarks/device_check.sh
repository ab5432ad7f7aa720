#!/usr/bin/env bash
# The GPU check of jaxtrade, one script of at most 8 minutes on one GPU, writing one JSON of figures.
#
#   benchmarks/device_check.sh                 # on the GPU machine, from the repository root
#   PYTHON=.venv/bin/python benchmarks/device_check.sh --dry-run    # here: CPU, small shapes (~5 min on 2 cores)
#
# On the device machine (no package index there): the image already holds the CUDA build of jax
# (jax + jax-cuda*-plugin/pjrt + the nvidia-* libraries) with flax, optax, orbax, chex, pandas; the
# few pure-Python packages jaxtrade needs beyond it travel as wheels in .whl/ (ignored by git, named
# in the run's `carry`), fetched here once by benchmarks/device_wheels.sh. Every wheel in .whl/ is
# installed with --no-index into /tmp/site first, so a carried jax/jaxlib build (where the carry limit
# allows it) replaces the image's. Run there as:
#
#   run(command="bash benchmarks/device_check.sh", carry=[".whl"], timeout_s=560)
#
# Steps (each reuses a benchmark of benchmarks/, each under its own time limit so that the whole stays
# under 8 minutes; a step that fails or runs out of time is recorded with its log's tail and the
# others still run):
#   env          benchmarks.env: the portfolio env at 65,536 envs (W = 30 and 1)
#   ppo_float32  benchmarks.train: PPO, the full network, 16,384 envs, float32 compute
#   ppo_bfloat16 the same in bfloat16 compute (float32 parameters)
#   options      benchmarks.env --env=options at 65,536 envs
#   dqn_population  benchmarks.agents: a population of 8 DQN seeds against the same seeds one by one
#   vram_cap     benchmarks.vram_cap: the VRAM-aware env cap (half the GPU's memory) against the peak
#                memory the capped run really used
# Output: $OUT/device_check.json (the device machine's $OUT; default runs/device_check/), and
# device_check.log beside it with every step's command, time and log tail.
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
  esac
done
[ "${DEVICE_CHECK_DRY_RUN:-0}" = 1 ] && DRY=1
DEST=${OUT:-$ROOT/runs/device_check}
mkdir -p "$DEST"
WORK=$(mktemp -d)
LOG=$DEST/device_check.log
: > "$LOG"
START=$(date +%s)
PY=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  echo "installing $(ls .whl/*.whl | wc -l) carried wheel(s) into $SITE" | tee -a "$LOG"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    .whl/*.whl >> "$LOG" 2>&1 || { echo "wheel install failed (see $LOG)"; exit 1; }
  export PYTHONPATH=$SITE:$ROOT
else
  export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1

if [ $DRY = 1 ]; then
  export JAX_PLATFORMS=cpu
  ENV_ARGS="--n_envs=64 --windows=1 --n_steps=50 --repeats=1 --numpy_steps=100"
  PPO_ARGS="--nets=small --n_envs=64 --windows=1 --clstm=false --peers=false --n_steps=4 --iters=1 --iterations_per_call=1"
  OPT_ARGS="--env=options --n_envs=64 --n_steps=50 --repeats=1"
  DQN_ARGS="--learn=false --speed_agent=dqn --population_agents=dqn --population=2 --speed_steps=256 --speed_repeats=1"
  VRAM_ARGS="--config=smoke --cap_gb=0.01 --iters=1"
  LIMITS=(240 240 240 240 240 240)
else
  ENV_ARGS="--n_envs=65536 --windows=30,1 --n_steps=500 --repeats=3 --numpy_steps=500"
  PPO_ARGS="--nets=full --n_envs=16384 --windows=1 --clstm=false --peers=false --n_steps=16 --iters=3"
  OPT_ARGS="--env=options --n_envs=65536 --n_steps=500 --repeats=3"
  DQN_ARGS="--learn=false --speed_agent=dqn --population_agents=dqn --population=8 --speed_steps=20000 --speed_repeats=3"
  VRAM_ARGS="--config=high_vram --fraction=0.5 --iters=2"
  LIMITS=(75 85 85 60 80 75)          # seconds; 460 in all, with the install and the checks under 8 min
  if ! "$PY" -c "import jax, sys; sys.exit(jax.default_backend() != 'gpu')" >> "$LOG" 2>&1; then
    echo "no GPU backend in this python ($PY): $("$PY" -c 'import jax; print(jax.__version__, jax.devices())' 2>&1 | tail -1)" | tee -a "$LOG"
    exit 1
  fi
fi

STEPS=(env ppo_float32 ppo_bfloat16 options dqn_population vram_cap)
ARGS=("benchmarks.env $ENV_ARGS"
      "benchmarks.train $PPO_ARGS --compute_dtype=float32"
      "benchmarks.train $PPO_ARGS --compute_dtype=bfloat16"
      "benchmarks.env $OPT_ARGS"
      "benchmarks.agents $DQN_ARGS --out=$WORK/agents"
      "benchmarks.vram_cap $VRAM_ARGS")
for i in "${!STEPS[@]}"; do
  name=${STEPS[$i]}
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  timeout -k 5 "${LIMITS[$i]}" "$PY" -m ${ARGS[$i]} > "$WORK/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  echo "$rc $t0 $t1" > "$WORK/$name.rc"
  secs=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")
  { echo "=== $name: python -m ${ARGS[$i]} -> exit $rc in $secs s"; tail -n 25 "$WORK/$name.log"; } >> "$LOG"
  echo "$name: exit $rc ($secs s)"
done

"$PY" - "$WORK" "$DEST/device_check.json" "$DRY" "$START" <<'PY'
import json, os, platform, subprocess, sys, time
work, out, dry, start = sys.argv[1], sys.argv[2], sys.argv[3] == "1", float(sys.argv[4])
steps = ["env", "ppo_float32", "ppo_bfloat16", "options", "dqn_population", "vram_cap"]
report = {"dry_run": dry, "steps": {}}
try:
    import jax
    report["jax"] = {"version": jax.__version__, "backend": jax.default_backend(),
                     "devices": [d.device_kind for d in jax.devices()]}
except Exception as e:  # noqa: BLE001 -- recorded, the figures still go out
    report["jax"] = {"error": repr(e)}
try:
    report["nvidia_smi"] = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
        capture_output=True, text=True, timeout=20).stdout.strip()
except (OSError, subprocess.SubprocessError):
    report["nvidia_smi"] = None
report["host"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
for name in steps:
    rc_path = os.path.join(work, f"{name}.rc")
    if not os.path.exists(rc_path):
        report["steps"][name] = {"status": "not run"}
        continue
    rc, t0, t1 = open(rc_path).read().split()
    text = open(os.path.join(work, f"{name}.log"), errors="replace").read()
    entry = {"exit": int(rc), "seconds": round(float(t1) - float(t0), 1),
             "status": "ok" if rc == "0" else ("timeout" if rc in ("124", "137") else "failed")}
    figures = [ln[5:] for ln in text.splitlines() if ln.startswith("JSON ")]
    if name == "dqn_population":
        path = os.path.join(work, "agents", "agents.json")
        if os.path.exists(path):
            entry["figures"] = json.load(open(path)).get("speed", [])
    elif figures:
        entry["figures"] = json.loads(figures[-1])
    if entry["status"] != "ok" or "figures" not in entry:
        entry["log_tail"] = text.splitlines()[-15:]
    report["steps"][name] = entry
report["seconds"] = round(time.time() - start, 1)
with open(out, "w") as f:
    json.dump(report, f, indent=1, default=str)
ok = sum(s.get("status") == "ok" for s in report["steps"].values())
print(f"{out}: {ok} of {len(steps)} steps ok in {report['seconds']} s")
PY
rm -rf "$WORK"
