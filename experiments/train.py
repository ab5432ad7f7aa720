r"""Train an agent: python -m experiments.train --config=experiments/configs/portfolio_gru.py \
    --workdir=runs/portfolio_gru [--config.ppo.critic_lr=1e-3] [--resume_from=latest] [--fresh_start]

The last line printed is the path of the out-of-sample report. The first SIGINT/SIGTERM finishes the
iteration, saves `latest` and exits 0; a second exits at once.
"""

from absl import app, flags
from ml_collections import config_flags

from experiments import common

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/portfolio_gru.py",
                                          "Experiment config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics, logs and the report.", required=True)
_RESUME = flags.DEFINE_string("resume_from", None,
                              "latest | composite | win_rate | profit_rate | sharpe | a checkpoint or "
                              "model artifact path. Default: latest if the workdir has one.")
_FRESH = flags.DEFINE_bool("fresh_start", False, "Ignore (and move aside) what the workdir holds.")
common.accept_verbosity_words()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    word = common.verbosity_word()
    common.setup_logging(word)
    from experiments.signals import StopRequest
    from jaxtrade.train import train  # after flag parsing: jax reads XLA_FLAGS at import

    with StopRequest() as stop:
        result = train(_CONFIG.value, _WORKDIR.value, resume_from=_RESUME.value,
                       fresh_start=_FRESH.value, verbosity=word, should_stop=lambda: stop.requested)
    if result.report_path:
        print(result.report_path, flush=True)


if __name__ == "__main__":
    app.run(main)
