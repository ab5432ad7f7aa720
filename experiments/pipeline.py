r"""The model pipeline end to end: .venv/bin/python -m experiments.pipeline \
    --config=experiments/configs/pipeline_sp500.py --workdir=runs/pipeline_sp500 \
    [--config.pipeline.registry=registry] [--config.pipeline.ensemble_mode=winner]

pretrain -> rl (frozen pretrained encoder) -> hybrid (fine-tuned end to end) -> ensemble, each
registered with its parents and graded on validation (`jaxtrade.pipeline.stages`). A rerun with the
same --workdir skips the stages already done. Prints the registry's table of the four models last
(the same as `.venv/bin/python -m experiments.registry list --root=<registry>`).
"""

from absl import app, flags

from experiments import common

_CONFIG = common.define_config_file("config", "experiments/configs/pipeline_sp500.py",
                                          "Pipeline config file (an experiment config with pretrain and "
                                          "pipeline sections).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "One directory per stage, pipeline.json, the registry.",
                               required=True)
common.accept_verbosity_words()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    word = common.verbosity_word()
    common.setup_logging(word)
    from jaxtrade.pipeline import registry, stages  # after flag parsing: jax reads XLA_FLAGS at import

    result = stages.run(_CONFIG.value, _WORKDIR.value, verbosity=word)
    entries = registry.Registry(result.registry).list()
    print(f"registry {result.registry}:\n" + registry.text_table(registry.list_rows(entries)), flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
