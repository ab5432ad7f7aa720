"""A runner in its own process, for the crash-restart test (tests/live/test_runner.py): trades one recorded
sp500-20 bar through AlpacaPaper against the test's fake Alpaca. The test sets JAXTRADE_TEST_KILL_AFTER_SUBMIT
so the process SIGKILLs itself between submitting the bar's orders and journaling them.

    python -m tests.live.runner_worker <model dir> <fake url> <journal path> <bar time>
Keys: APCA_API_KEY_ID / APCA_API_SECRET_KEY (the fake's).
"""

import sys


def main(model_dir: str, url: str, journal: str, bar: str) -> None:
    from jaxtrade.data import load_dataset
    from jaxtrade.live.broker import AlpacaPaper
    from jaxtrade.live.http import make_clients
    from jaxtrade.live.keys import load_keys
    from jaxtrade.live.runner import RecordedBars, Runner
    from jaxtrade.train.artifact import load_model

    policy, spec = load_model(model_dir)
    broker = AlpacaPaper(make_clients(load_keys(dotenv_path=None), url_override=url, timeout_s=5.0))
    runner = Runner(policy, spec, broker, RecordedBars(load_dataset("sp500-20")), journal_path=journal,
                    run_id="crash", fill_wait_s=0.0)
    runner.step(bar)


if __name__ == "__main__":
    main(*sys.argv[1:])
