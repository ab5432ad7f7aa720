"""Walk the README (issue 25): its shell commands run as written, smoke-sized, from the repository root.

The convention, for whoever edits a ```bash block of README.md:

1. A command is one line of a ```bash block, `\\` continuations joined and a trailing `# comment`
   dropped. A comment line `# = <command>` (what a make target runs) is a command too; other comment
   lines are not.
2. Every command is either walked by `test_readme_commands_run_smoke_sized` or named in `SKIP` (by
   a substring of the command) with the reason. A new command that is neither fails
   `test_every_readme_command_is_walked_or_skipped`, so adding one to the README means deciding here.
3. Walked commands run in the README's order (later ones use what earlier ones wrote: the smoke
   training run is made once and evaluated afterwards), each as a subprocess with cwd = the
   repository root, `.venv/bin/python` = this interpreter, and the environment of a fresh shell (no
   forced host devices). The smoke-sized substitutions, in `smoke_argv`:
   - `experiments.train --config=<any>` -> `experiments/configs/smoke.py` (one seed, 6 iterations);
   - every `runs/` -> one tmp directory;
   - `checkpoints/seed_0/` -> `checkpoints/` (the smoke run trains one seed, which keeps its models
     there; tests/test_first_hour.py checks the README's seed_<s> paths against the default run).
   A command repeated later in the README (the resume block's --fresh_start line is the `# =` line of
   `make train`) runs once. Everything else runs as written (the baselines on their full 2016-2022
   period: a short one saves little).
4. A walked command fails the test on a non-zero exit, or when an output it names is missing
   afterwards (`expected_outputs`: the run's report.md, an evaluation's eval-<split>/report.md, ...;
   deleted before the command runs, so a stale one does not count).

Budget: about 60 s on a 2-core CPU, shared (40 to 80 s measured; the smoke training run is most of
it), hence `slow`.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# substring of a README command -> why the walk does not run it
SKIP = {
    "make train": "installs, then trains the full default run (minutes); its command, the `# =` line "
                  "under Train, is walked smoke-sized",
    "make test": "the test suite itself",
    "--config.seed=1 --config.ppo.critic_lr=1e-3": "a second training run (the walk trains once); "
                                                   "config overrides are tested in tests/train",
    "experiments.walk_forward": "a minute or more even smoke-sized (65 s for 2 folds, README); "
                                "tests/pipeline/test_walk_forward.py runs it tiny; the M15 line needs the "
                                "user's own CSV",
    "experiments.pipeline": "about a minute; tests/pipeline/test_stages.py runs the stages tiny",
    "experiments.registry list --root=runs/pipeline_sp500/registry": "needs the pipeline's registry "
                                                                      "(skipped above)",
    "export APCA_API_KEY_ID": "Alpaca keys: network",
    "experiments.paper_trade": "Alpaca's API (network and keys), or a bars.csv of the user's; the "
                               "offline sample replay (--bars_csv=sample --dry_run) is run as written by "
                               "tests/live/test_runner.py::test_offline_dry_run_on_the_sample_prints_each_"
                               "bar_once_and_a_summary; tests/live runs the runner against a local fake of "
                               "the API",
    "benchmarks.": "minutes each; figures in BUILD_NOTES.md",
    "--coordinator_address=host0": "two machines; tests/train/test_multiprocess_run.py runs 2 processes "
                                   "on 127.0.0.1",
    "srun ": "SLURM; the variables it sets are read by experiments.common.distributed_settings, tested in "
             "tests/agents/test_multiprocess.py",
    "--num_processes=2 --process_id=I": "several machines (and a PostgreSQL server); "
                                        "tests/pipeline/test_*_multiprocess.py run 2 processes",
    "benchmarks/device_wheels.sh": "downloads wheels from PyPI (network)",
    "benchmarks/device_check.sh": "a GPU; its --dry-run takes minutes on the CPU (BUILD_NOTES)",
    "experiments.reproduce": "a published protocol: minutes even reduced (tdqn2021 in full: 14 min); "
                             "tests/pipeline/papers runs a reduced protocol twice and the unknown-paper "
                             "error",
}
SMOKE_TRAIN_CONFIG = "experiments/configs/smoke.py"
TIMEOUT_S = 300


def readme_commands(text: str) -> list[str]:
    """Every command of every ```bash block, in order (rule 1 of the module docstring)."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        block = re.sub(r"\\\n\s*(?:#\s*)?", " ", block)        # join continuations (also in `# =` lines)
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("# = "):
                line = line[len("# = "):]
            elif line.startswith("#"):
                continue
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line:
                commands.append(" ".join(line.split()))
    return commands


def _readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def skip_reason(command: str) -> str | None:
    return next((why for key, why in SKIP.items() if key in command), None)


def smoke_argv(command: str, tmp: str) -> list[str]:
    """The walked form of a README command (rule 3)."""
    argv = shlex.split(command)
    assert argv[0] == ".venv/bin/python", f"walked commands run the virtualenv's Python: {command}"
    module = argv[2] if argv[1] == "-m" else ""
    out = [sys.executable]
    for arg in argv[1:]:
        if module == "experiments.train" and arg.startswith("--config="):
            arg = "--config=" + SMOKE_TRAIN_CONFIG
        arg = re.sub(r"(?<![\w/])runs/", tmp.rstrip("/") + "/", arg)
        arg = arg.replace("checkpoints/seed_0/", "checkpoints/")
        out.append(arg)
    return out


def _flag(argv: list[str], name: str, default: str | None = None) -> str | None:
    return next((a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")), default)


def expected_outputs(argv: list[str]) -> list[str]:
    """The files a walked command must leave behind (rule 4)."""
    module = argv[2] if len(argv) > 2 and argv[1] == "-m" else ""
    workdir = _flag(argv, "workdir")
    if module == "experiments.train" and "--fresh_start" in argv:
        return [os.path.join(workdir, name) for name in ("report.md", "report.csv", "metrics.jsonl",
                                                          "config.json", "learning_curve.png")]
    if module == "experiments.evaluate":
        run = workdir or _flag(argv, "checkpoint").split("/checkpoints")[0]
        out = _flag(argv, "out", os.path.join(run, f"eval-{_flag(argv, 'split', 'test')}"))
        return [os.path.join(out, "report.md"), os.path.join(out, "report.csv")]
    if module == "experiments.baselines":
        return [os.path.join(workdir, "report.md"), os.path.join(workdir, "report.csv")]
    return []


def _fresh_shell_env() -> dict[str, str]:
    env = dict(os.environ)
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.pop("XLA_FLAGS", "")).strip()
    if flags:
        env["XLA_FLAGS"] = flags
    return env


def test_every_readme_command_is_walked_or_skipped():
    commands = readme_commands(_readme())
    assert len(commands) >= 15, commands
    walked = [c for c in commands if skip_reason(c) is None]
    for command in walked:        # the form rule 3 can run: a real command of the virtualenv's Python
        assert command.startswith(".venv/bin/python -m "), f"walk it (rule 3) or name it in SKIP: {command}"
        left = [a for a in smoke_argv(command, "/t") if "..." in a or "<" in a]
        assert not left, f"a placeholder the substitutions do not fill in: {left} in {command}"
    assert any("experiments.train" in c and "--fresh_start" in c for c in walked), walked
    stale = [key for key in SKIP if not any(key in c for c in commands)]
    assert not stale, f"SKIP entries that match no README command (remove them): {stale}"


def test_readme_parsing_joins_continuations_and_drops_comments():
    text = ("```bash\nmake a   # why\n# = .venv/bin/python -m m --x=1 \\\n#       --y=2\n# just a note\n"
            ".venv/bin/python -m n \\\n    --z=3            # trailing\n```\n```python\nnot_bash()\n```\n")
    assert readme_commands(text) == ["make a", ".venv/bin/python -m m --x=1 --y=2",
                                     ".venv/bin/python -m n --z=3"]


def test_smoke_substitutions():
    argv = smoke_argv(".venv/bin/python -m experiments.train --config=experiments/configs/portfolio_gru.py "
                      "--workdir=runs/portfolio_gru --resume_from=latest", "/t")
    assert argv == [sys.executable, "-m", "experiments.train", f"--config={SMOKE_TRAIN_CONFIG}",
                    "--workdir=/t/portfolio_gru", "--resume_from=latest"]
    argv = smoke_argv(".venv/bin/python -m experiments.evaluate "
                      "--checkpoint=runs/portfolio_gru/checkpoints/seed_0/best_composite", "/t")
    assert argv[-1] == "--checkpoint=/t/portfolio_gru/checkpoints/best_composite"
    assert expected_outputs(argv)[0] == "/t/portfolio_gru/eval-test/report.md"


@pytest.mark.slow
def test_readme_commands_run_smoke_sized(tmp_path):
    tmp = str(tmp_path / "runs")
    os.makedirs(tmp)
    env = _fresh_shell_env()
    ran = []
    for command in readme_commands(_readme()):
        if skip_reason(command) is not None or command in ran:
            continue
        argv = smoke_argv(command, tmp)
        outputs = expected_outputs(argv)
        for path in outputs:
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        where = f"README command\n  {command}\nran as\n  {shlex.join(argv)}"
        tail = (proc.stdout + proc.stderr)[-3000:]
        assert proc.returncode == 0, f"{where}\nexited {proc.returncode}:\n{tail}"
        missing = [p for p in outputs if not os.path.exists(p)]
        assert not missing, f"{where}\nleft no {missing}"
        if "experiments.train" in command and "--fresh_start" in command:
            # The README: "The last line printed is the path of runs/portfolio_gru/report.md".
            assert proc.stdout.strip().splitlines()[-1] == outputs[0], proc.stdout[-500:]
        ran.append(command)
    assert len(ran) >= 4, ran
