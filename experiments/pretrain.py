r"""Pretrain an encoder on supervised targets: .venv/bin/python -m experiments.pretrain \
    --config=experiments/configs/pretrain_sp500.py --workdir=runs/pretrain [--config.pretrain.epochs=20] \
    [--registry=runs/registry --name=clstm-sp500]

Progress is one line per epoch (train and validation loss). The last line printed is the path of the
encoder artifact; start an RL run from it with `experiments.train
--config=experiments/configs/portfolio_clstm_pretrained.py --config.model.encoder_init=<that path>`
(frozen; `--config.ppo.frozen='()'` fine-tunes it). With --registry it is also registered there
(stage "pretrain") under --name.
"""

from absl import app, flags

from experiments import common

_CONFIG = common.define_config_file("config", "experiments/configs/pretrain_sp500.py",
                                          "Experiment config file with a `pretrain` section.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the encoder artifact and history.json go.",
                               required=True)
_REGISTRY = flags.DEFINE_string("registry", None, "A model registry directory to register the encoder in.")
_NAME = flags.DEFINE_string("name", None, "The registry name of the encoder (with --registry).")
common.accept_verbosity_words()


@flags.multi_flags_validator(["registry", "name"], message="--registry and --name go together")
def _registry_flags_together(values) -> bool:
    return (values["registry"] is None) == (values["name"] is None)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.setup_logging(common.verbosity_word())
    from jaxtrade.pipeline import pretrain  # after flag parsing: jax reads XLA_FLAGS at import

    result = pretrain.run(_CONFIG.value, _WORKDIR.value)
    if _REGISTRY.value is not None:
        from jaxtrade.pipeline.registry import Registry

        entry = Registry(_REGISTRY.value).register(_NAME.value, result.artifact, stage="pretrain")
        print(f"registered as {entry.ref}", flush=True)
    print(result.artifact, flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
