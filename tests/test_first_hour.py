"""The README's commands work from a fresh shell as written (issue 25): every `python -m` names the
virtualenv's Python, and every model path under the default run names the layout that run writes."""

import os
import re

from experiments.configs import portfolio_gru
from jaxtrade.train.loop import seeds_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_WORKDIR = "runs/portfolio_gru"          # the Makefile's TRAIN_WORKDIR


def _readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_every_python_command_in_the_readme_is_the_virtualenvs():
    text = _readme()
    bare = [text[max(0, m.start() - 40):m.end() + 30] for m in re.finditer(r"python3? -m ", text)
            if not text[:m.start()].endswith(".venv/bin/")]
    assert not bare, f"write .venv/bin/python -m (a fresh shell's python has no absl): {bare}"
    assert text.count(".venv/bin/python -m experiments.") >= 10


def test_readme_model_paths_exist_in_the_default_runs_layout():
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as f:
        assert f"TRAIN_WORKDIR ?= {DEFAULT_WORKDIR}\n" in f.read()
    seeds = seeds_of(portfolio_gru.get_config())
    # loop.best_directory: checkpoints/best_<metric> for one seed, checkpoints/seed_<s>/best_<metric> for many
    allowed = {f"seed_{s}/" for s in seeds} if len(seeds) > 1 else {""}
    paths = re.findall(rf"{DEFAULT_WORKDIR}/checkpoints/((?:[\w.-]+/)*?)best_\w+", _readme())
    assert paths, "the README names no model of the default run"
    assert set(paths) <= allowed, f"README model paths {set(paths)}; the default run writes {allowed}"
