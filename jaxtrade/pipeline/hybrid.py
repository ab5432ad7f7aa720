"""Hybrids: a pretrained encoder plus an RL policy, fine-tuned end to end, registered with both parents.

    result = hybrid.make_hybrid(config, workdir, encoder_dir=..., rl_dir=..., iterations=20,
                                registry=reg, encoder_ref="clstm-sp500/v1", rl_ref="ppo-sp500/v2")

1. The parents: an encoder artifact (`pipeline.pretrain`) and an RL model artifact whose network has
   that encoder's architecture (typically trained with `model.encoder_init=<encoder>`, frozen or not).
   An RL artifact whose encoder settings (`models.encoder_config`) or observation spec differ from the
   encoder's is refused, naming both.
2. The run: `config` (data, env, the agent's learning rates, usually lower than the RL run's) with the RL
   artifact's model section and nothing frozen (`<agent>.frozen=()`), one seed, `iterations` training
   iterations, through `loop.run(init_params=<the RL artifact's params>)` in `workdir`: every part of
   the network (encoder, core, heads) is updated.
3. The hybrid is the run's best-validation-composite artifact (`checkpoints/best_composite`); with a
   registry it is registered with stage "hybrid" and parents (encoder_ref, rl_ref).
"""

from __future__ import annotations

import dataclasses
import logging
import os

import ml_collections

from jaxtrade.agents import registry as agent_registry
from jaxtrade.models import encoder_config
from jaxtrade.train import artifact as artifact_lib
from jaxtrade.train import evaluation, loop
from jaxtrade.train import setup as setup_lib
from jaxtrade.train.checkpoints import Checkpoints
from jaxtrade.train.trials import summary_of_artifact

log = logging.getLogger("jaxtrade")


@dataclasses.dataclass
class HybridResult:
    artifact: str                    # the hybrid model artifact (best validation composite)
    train: loop.TrainResult
    entry: object | None = None      # the registry Entry, where a registry was given


def check_parents(encoder_dir: str, rl_dir: str, rl, *, obs_spec=None, train_end=None) -> None:
    """Checks that the RL artifact in `rl_dir` (its ModelSpec `rl`) has the encoder artifact's
    architecture on the same observations (and, where given, this run's `obs_spec`), and that neither
    parent learnt from rows after `train_end` (this run's last training date); ValueError naming both."""
    _, enc = artifact_lib.load_encoder(encoder_dir)
    rl_encoder = encoder_config(rl.model)
    if rl_encoder != enc.encoder:
        raise ValueError(f"hybrid: the RL model {rl_dir} has the encoder {rl_encoder}, the pretrained "
                         f"encoder {encoder_dir} is {enc.encoder}: a hybrid joins an RL model to the encoder "
                         "it was trained from (train it with model.encoder_init=<the encoder>)")
    describe = artifact_lib.describe_obs_spec
    others = [("the pretrained encoder " + encoder_dir, enc.obs_spec)]
    others += [("this run's env", obs_spec)] if obs_spec is not None else []
    for what, spec in others:
        if rl.obs_spec != spec:
            raise ValueError(f"hybrid: the RL model {rl_dir} observes {describe(rl.obs_spec)}, {what} "
                             f"{describe(spec)}")
    for what, pre in (("pretrained encoder " + encoder_dir, enc.preprocessor),
                      ("RL model " + rl_dir, rl.preprocessor)):
        if train_end is not None and pre.train[1] > train_end:
            raise ValueError(f"hybrid: the {what} learnt from rows up to {pre.train[1]:%Y-%m-%d}, after this "
                             f"run's training split ends ({train_end:%Y-%m-%d}): its validation would be "
                             "in-sample; use parents trained on or before the run's training range")


def make_hybrid(config, workdir: str, *, encoder_dir: str, rl_dir: str, iterations: int, registry=None,
                encoder_ref: str | None = None, rl_ref: str | None = None, name: str = "hybrid",
                verbosity: str = "quiet", held_out: bool = False) -> HybridResult:
    """Fine-tunes the RL artifact `rl_dir` end to end (module docstring) into `workdir`; registers the
    result in `registry` (a `pipeline.registry.Registry`) as `name` with parents (encoder_ref, rl_ref),
    with the trials of its fine-tuning run. held_out: first backtest the chosen model on the test split
    (data no choice saw) and record it as its held-out metrics, so the registry can grade it."""
    if registry is not None and not (encoder_ref and rl_ref):
        raise ValueError("make_hybrid with a registry needs encoder_ref and rl_ref, the registry refs of "
                         "its two parents (e.g. 'clstm-sp500/v1', 'ppo-sp500/v2')")
    if not config.data.get("val"):
        raise ValueError("make_hybrid selects the fine-tuned model on validation: set data.val")
    rl = artifact_lib.load_spec(rl_dir)
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.model = ml_collections.ConfigDict({k: v for k, v in rl.model.items() if k != "encoder_init"})
    cfg.agent.name = rl.agent                          # the RL parent's algorithm fine-tunes it
    agent_registry.section(cfg)["frozen"] = ()
    cfg.train.seeds = 1
    cfg.train.total_timesteps = cfg.train.episodes = None
    cfg.train.iterations = int(iterations)
    setup = setup_lib.build(cfg)
    agent = setup.make_agent()
    check_parents(encoder_dir, rl_dir, rl, obs_spec=agent.obs_spec, train_end=setup.preprocessor.train[1])
    log.info("hybrid: fine-tuning %s (encoder from %s) end to end for %d iterations", rl_dir, encoder_dir,
             iterations)
    result = loop.run(setup, agent, workdir, init_params=artifact_lib.load_params(rl_dir),
                      verbosity=verbosity)
    best = Checkpoints(workdir).directory("composite")
    if not artifact_lib.is_artifact(best):
        raise ValueError(f"hybrid: the fine-tuning run in {workdir} saved no best-validation model "
                         f"({best}); it needs at least one validation (train.eval_every <= {iterations})")
    entry = None
    if registry is not None:
        if held_out:
            evaluation.held_out_of_artifact(best, "test")
        entry = registry.register(name, best, stage="hybrid", parents=(encoder_ref, rl_ref),
                                  trials=summary_of_artifact(workdir, best))
        log.info("hybrid registered as %s (parents %s, %s)", entry.ref, encoder_ref, rl_ref)
    return HybridResult(os.path.abspath(best), result, entry)
