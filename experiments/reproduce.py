r"""Reproduce a published protocol by seed: .venv/bin/python -m experiments.reproduce --paper=tdqn2021 \
    [--workdir=runs/reproduce/tdqn2021] [--seeds=5] [--config.some.key=value]

`--paper=NAME` loads `experiments/configs/papers/NAME.py:get_config()` (`--config=PATH` names another
file; `--config.x=y` overrides a field of either). The config's `protocol` names a module (e.g.
`jaxtrade.pipeline.papers.tdqn2021`) whose `run(config, workdir) -> pathlib.Path` writes the report: our
table beside the paper's, seeds and ranges, the overfitting section, every departure from the paper, and
the table CSV's sha256 (the same command twice gives the same bytes on one machine type). `--seeds=N`
overrides the config's `seeds`. The last line printed is the report's path. An unknown paper lists the
known ones (the files in experiments/configs/papers/).
"""

import importlib
import pathlib
import sys

from absl import app, flags

from experiments import common

PAPERS_DIR = pathlib.Path(__file__).resolve().parent / "configs" / "papers"


def known_papers() -> list[str]:
    """The papers with a config: the module names in experiments/configs/papers/."""
    return sorted(p.stem for p in PAPERS_DIR.glob("*.py") if not p.stem.startswith("_"))


def _paper_in_argv(argv: list[str]) -> str | None:
    """--paper's value on the command line (the last wins), read before absl parses flags so that the
    paper's config file can be the --config flag's default (and `--config.x=y` overrides apply to it)."""
    return common.flag_in_argv(argv, "paper")


def _default_config(argv: list[str]) -> str | None:
    paper = _paper_in_argv(argv)
    return str(PAPERS_DIR / f"{paper}.py") if paper in known_papers() else None


_PAPER = flags.DEFINE_string("paper", None, "The paper to reproduce: one of the files in "
                             "experiments/configs/papers/ (without .py).", required=True)
_CONFIG = common.define_config_file("config", _default_config(sys.argv),
                                    "The paper's config file (default: experiments/configs/papers/"
                                    "<paper>.py); --config.x=y overrides a field.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the report, table and runs go "
                               "(default: runs/reproduce/<paper>).")
_SEEDS = flags.DEFINE_integer("seeds", None, "Seeds per agent (default: the config's `seeds`).",
                              lower_bound=1)
common.accept_verbosity_words()


def resolve(paper: str, config, seeds: int | None):
    """The config to run: checks the paper is known and the config names a protocol; `seeds` overrides
    the config's seed count. Raises ValueError (one line, exit 2) naming what to change."""
    papers = known_papers()
    if paper not in papers:
        raise ValueError(f"unknown paper {paper!r}: the known papers are {', '.join(papers)} "
                         f"(one config each in {PAPERS_DIR})")
    if config is None:
        raise ValueError(f"no config loaded for paper {paper!r}")
    if "protocol" not in config:
        raise ValueError(f"the config for {paper!r} has no `protocol` field (the module whose "
                         "run(config, workdir) reproduces the paper)")
    if seeds is not None:
        if "seeds" not in config:
            raise ValueError(f"--seeds given but the config for {paper!r} has no `seeds` field")
        config = config.copy_and_resolve_references()
        config.seeds = seeds
    return config


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.setup_logging(common.verbosity_word())
    paper = _PAPER.value
    config = resolve(paper, _CONFIG.value, _SEEDS.value)
    workdir = pathlib.Path(_WORKDIR.value or f"runs/reproduce/{paper}")
    protocol = importlib.import_module(config.protocol)   # after flag parsing: jax reads XLA_FLAGS at import
    report = protocol.run(config, workdir)
    print(f"report: {report}", flush=True)
    print(report, flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
