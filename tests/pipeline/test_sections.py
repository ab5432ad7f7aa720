"""The pipeline's config sections (`pretrain`, `pipeline`, `search`, `walk_forward`) refuse a
misspelled key by its dotted name, listing the known keys, before anything is built or written."""

import os

import pytest

from experiments.configs import smoke
from jaxtrade.pipeline import pretrain, search, stages
from jaxtrade.pipeline import walk_forward as wf

SECTIONS = {"pretrain": (pretrain, "epochs"), "pipeline": (stages, "prefix"), "search": (search, "n_trials"),
            "walk_forward": (wf, "decay")}


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_a_misspelled_section_key_is_refused(name, tmp_path):
    module, known = SECTIONS[name]
    want = rf"unknown {name} config key\(s\) \['{name}.{known}s'\]; known: \[.*'{known}'"
    with pytest.raises(ValueError, match=want):
        module.default_config(**{known + "s": 1})
    cfg = smoke.get_config()
    cfg[name] = module.default_config()
    cfg[name][known + "s"] = 1                # what a config file's typo does to an unlocked section
    workdir = os.path.join(tmp_path, "run")
    with pytest.raises(ValueError, match=want):
        module.run(cfg, workdir)
    assert not os.path.exists(workdir)
