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


def _github_anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_contents_links_every_section():
    text = _readme()
    sections = re.findall(r"^## (.+)$", text, re.M)
    contents = text[:text.index("## ")]
    links = re.findall(r"^- \[(.+?)\]\(#([\w-]+)\)$", contents, re.M)
    assert links == [(s, _github_anchor(s)) for s in sections], \
        "the README's contents list must link every ## section, in order"


def test_options_reference_page_has_the_codes_tables_and_the_readme_links_it():
    from jaxtrade.envs.options import costs, strategies

    with open(os.path.join(ROOT, "docs", "options.md"), encoding="utf-8") as f:
        page = f.read()
    assert strategies.action_table_markdown("full") in page
    assert costs.options_fee_table() in page
    assert "](docs/options.md)" in _readme()
    for heading in re.findall(r"^## (.+)$", page, re.M):
        assert f"(#{_github_anchor(heading)})" in page, f"docs/options.md: no link to {heading!r}"


def test_every_loadable_dataset_is_listed_and_the_readme_shows_the_list():
    from jaxtrade.data import datasets, list_datasets

    names = list_datasets()
    assert names == tuple(datasets._DATASETS), "list_datasets() must name every dataset load_dataset loads"
    assert f"list_datasets()   # {names!r}" in _readme()
    with open(os.path.join(ROOT, "jaxtrade", "datasets", "README.md"), encoding="utf-8") as f:
        bundled = f.read()
    documented = set(re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+|vix)`", bundled.split("Datasets (")[1]
                                .split("\n\n")[0]))
    assert documented <= set(names), f"jaxtrade/datasets/README.md names {documented - set(names)}"
    configured = set(re.findall(r"dataset\s*=\s*\"([\w-]+)\"", _all_configs()))
    assert configured <= set(names), f"configs name datasets {configured - set(names)} that do not load"
    # (tests/data/test_data_datasets.py loads every listed name)


def _all_configs() -> str:
    folder = os.path.join(ROOT, "experiments", "configs")
    return "\n".join(open(os.path.join(folder, f), encoding="utf-8").read()
                     for f in sorted(os.listdir(folder)) if f.endswith(".py"))
