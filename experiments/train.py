r"""Train an agent: .venv/bin/python -m experiments.train --config=experiments/configs/portfolio_gru.py \
    --workdir=runs/portfolio_gru [--config.ppo.critic_lr=1e-3] [--resume_from=latest] [--fresh_start]

Multi-process (several hosts, or several processes on one machine): start the same command once per
process with --coordinator_address=HOST:PORT (process 0's host) --num_processes=P --process_id=I (or
set JAXTRADE_COORDINATOR_ADDRESS, JAXTRADE_NUM_PROCESSES, JAXTRADE_PROCESS_ID; under SLURM's srun or
Open MPI's mpirun nothing: jax reads the scheduler's variables). Every process trains over all
processes' devices (`jaxtrade.agents.devices`); process 0 alone writes the workdir's logs and report,
every process its shards of the checkpoints, so --workdir must be on a filesystem all of them reach.
Only process 0 prints the report's path.

The last line printed is the path of the out-of-sample report. The first SIGINT/SIGTERM finishes the
iteration, saves `latest` and exits 0; a second exits at once.

Rerunning into a workdir that holds a run resumes it from `latest` when the config is the one in its
config.json but for the budget (train.iterations / total_timesteps / episodes) and the logging keys
(`jaxtrade.train.workdir.RESUMABLE_KEYS`); any other difference exits 2 with one line naming the keys
(old -> new), before anything is touched. A finished run is not run again: it says so and prints
its report's path. --fresh_start moves the whole earlier run into <workdir>/previous-<time>/.
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
_FRESH = flags.DEFINE_bool("fresh_start", False, "Move the whole earlier run (everything in the workdir "
                           "but earlier previous-* archives) into <workdir>/previous-<time>/ and train "
                           "from scratch.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0 for a multi-process run (jax.distributed). "
                                   "Default: one process.")
_NUM_PROCESSES, _PROCESS_ID = common.define_process_flags("in a multi-process run")
common.accept_verbosity_words()


@flags.multi_flags_validator(["coordinator_address", "num_processes", "process_id"],
                             message="--coordinator_address, --num_processes and --process_id go together "
                                     "(all three for a multi-process run, none for one process)")
def _distributed_flags_together(values) -> bool:
    return len({v is None for v in values.values()}) == 1


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    word = common.verbosity_word()
    common.setup_logging(word)
    joined = common.distributed_settings(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    if joined is not None:  # before anything builds devices
        from jaxtrade.agents import devices

        devices.initialize_distributed(*joined)
    from experiments.signals import StopRequest
    from jaxtrade.train import train  # after flag parsing: jax reads XLA_FLAGS at import

    with StopRequest() as stop:
        result = train(_CONFIG.value, _WORKDIR.value, resume_from=_RESUME.value,
                       fresh_start=_FRESH.value, verbosity=word, should_stop=lambda: stop.requested)
    if result.report_path:
        print(result.report_path, flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
