r"""Paper-trade a trained model on Alpaca, one bar at a time:

python -m experiments.paper_trade --model=runs/portfolio_gru/checkpoints/best_composite \
    --timeframe=1Day --dry_run

--dry_run fills orders in a simulator with the env's own costs (no order reaches Alpaca; bars, clock and
calendar still come from Alpaca unless --bars_csv replays a file); without it orders go to the Alpaca
paper account. Keys: APCA_API_KEY_ID / APCA_API_SECRET_KEY from the environment or a .env file, never
from a flag. Prints one line per bar and the journal's path last; rerun with the same --run_id and
--journal_dir to resume a session (an order already at Alpaca is never sent twice).
"""

import logging
import os

from absl import app, flags

from experiments import common

_MODEL = flags.DEFINE_string("model", None, "A model artifact directory, or with --registry a registry ref "
                             "(name/v3, name@champion).", required=True)
_REGISTRY = flags.DEFINE_string("registry", None, "A registry root: --model is then a ref in it.")
_SYMBOLS = flags.DEFINE_list("symbols", None, "The symbols (default and only choice: the model's).")
_TIMEFRAME = flags.DEFINE_enum("timeframe", "1Day", ["1Min", "5Min", "15Min", "30Min", "1Hour", "4Hour",
                                                     "1Day"], "Bar length.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Simulated fills (SimBroker): nothing is sent to Alpaca.")
_BARS_CSV = flags.DEFINE_string("bars_csv", None, "Replay this CSV's bars instead of Alpaca's (with "
                                "--dry_run; no keys needed).")
_START = flags.DEFINE_string("start", None, "Replay: the first bar (default: the last --max_bars rows).")
_END = flags.DEFINE_string("end", None, "Replay: the last bar.")
_URL = flags.DEFINE_string("url_override", None, "One base URL for Alpaca's APIs (a local fake in tests).")
_MAX_BARS = flags.DEFINE_integer("max_bars", 0, "Stop after this many bars (0: until stopped, or the "
                                 "replay's end).")
_JOURNAL_DIR = flags.DEFINE_string("journal_dir", "runs/paper", "Where the journal, settings and log go.")
_RUN_ID = flags.DEFINE_string("run_id", None, "Run id (starts every client_order_id); reuse it to resume.")
_FLATTEN = flags.DEFINE_float("flatten_before_close_s", None, "Close every position this many seconds before "
                              "the market closes.")
_ALLOW_SIP = flags.DEFINE_bool("allow_sip", False, "Allow --feed=sip (needs a plan with SIP data).")
_FEED = flags.DEFINE_enum("feed", "iex", ["iex", "sip"], "Alpaca's stock data feed.")
_BENCHMARK = flags.DEFINE_string("benchmark", "SPY", "Symbol standing in for the training data's benchmark.")
_CASH = flags.DEFINE_float("cash", None, "Dry run: starting cash (default: the env's initial_cash).")
_FRACTIONAL = flags.DEFINE_bool("fractional", False, "Fractional shares (default: whole shares).")
_LEAD = flags.DEFINE_float("lead_s", 60.0, "Trade each bar this many seconds before it closes.")
_SEED = flags.DEFINE_integer("seed", 0, "The session's key schedule (policy sampling, simulated slippage).")
_CACHE = flags.DEFINE_string("cache_dir", None, "Bar cache directory (default: none).")
_FEES = flags.DEFINE_enum("regulatory_fees", None, ["us_schedule", "flat", "none"],
                          "Override the model's env.costs.regulatory_fees (e.g. flat past the dated "
                          "schedule).")
_RECORD_OBS = flags.DEFINE_bool("record_obs", False, "Journal each observation itself (else its digest).")
common.accept_verbosity_words()


def _line(rec: dict) -> None:
    sent = [o for o in rec.get("orders", []) if o.get("status") not in ("not_sent",)]
    equity = f" equity={rec['equity']:.2f}" if rec.get("equity") is not None else ""
    reason = f" ({rec['reason']})" if rec.get("reason") else ""
    print(f"{rec['bar']} {rec['status']:<9} orders={len(sent)} closed={len(rec.get('closed') or [])}{equity}"
          f"{reason}", flush=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.setup_logging(common.verbosity_word())
    from jaxtrade.live import runner

    model = _MODEL.value
    if _REGISTRY.value:
        from jaxtrade.pipeline.registry import Registry

        model = Registry(_REGISTRY.value).path(model)
    run_id = _RUN_ID.value or runner.default_run_id(model)
    os.makedirs(_JOURNAL_DIR.value, exist_ok=True)
    handler = logging.FileHandler(os.path.join(_JOURNAL_DIR.value, f"{run_id}.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("jaxtrade").addHandler(handler)
    journal = runner.paper_trade(
        model, timeframe_name=_TIMEFRAME.value, symbols=_SYMBOLS.value, dry_run=_DRY_RUN.value,
        bars_csv=_BARS_CSV.value, start=_START.value, end=_END.value, url_override=_URL.value,
        max_bars=_MAX_BARS.value or None, journal_dir=_JOURNAL_DIR.value, run_id=run_id,
        flatten_before_close_s=_FLATTEN.value, allow_sip=_ALLOW_SIP.value, feed=_FEED.value,
        benchmark=_BENCHMARK.value, cash=_CASH.value, fractional=_FRACTIONAL.value, lead_s=_LEAD.value,
        seed=_SEED.value, cache_dir=_CACHE.value, record_obs=_RECORD_OBS.value, regulatory_fees=_FEES.value,
        on_bar=_line)
    print(journal, flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
