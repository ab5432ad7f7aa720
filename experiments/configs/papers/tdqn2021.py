"""Théate & Ernst (2021), "An Application of Deep Reinforcement Learning to Algorithmic Trading" (TDQN),
Expert Systems with Applications 173, 114632 (arXiv 2004.06627): `python -m experiments.reproduce
--paper=tdqn2021`. Every paper config has `protocol` (the module whose run(config, workdir) writes the
report) and `seeds` (seeds per agent; --seeds overrides it)."""

import ml_collections


def get_config():
    cfg = ml_collections.ConfigDict()
    cfg.protocol = "jaxtrade.pipeline.papers.tdqn2021"
    cfg.seeds = 5
    return cfg
