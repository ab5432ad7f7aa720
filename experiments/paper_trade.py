r"""Paper-trade a trained model on Alpaca, one bar at a time:

.venv/bin/python -m experiments.paper_trade --model=runs/portfolio_gru/checkpoints/seed_0/best_composite \
    --timeframe=1Day --dry_run

--model is one model artifact: for a run of several seeds (the default experiment trains three) name the
seed, checkpoints/seed_<s>/best_composite; a one-seed run keeps it in checkpoints/best_composite. A path
that is no artifact is refused with the artifacts that exist under its run.

--dry_run fills orders in a simulator with the env's own costs (no order reaches Alpaca; bars, clock and
calendar still come from Alpaca unless --bars_csv replays a file); without it orders go to the Alpaca
paper account. Keys: APCA_API_KEY_ID / APCA_API_SECRET_KEY from the environment or a .env file, never
from a flag. Prints one line per bar and the journal's path last; rerun with the same --run_id and
--journal_dir to resume a session (an order already at Alpaca is never sent twice).

Offline, no keys, no network: replay recorded bars through the simulator.

.venv/bin/python -m experiments.paper_trade --model=<artifact> --bars_csv=sample --dry_run
.venv/bin/python -m experiments.paper_trade --export_bars=bars.csv --dataset=sp500-20 --start=2022-06-01 \
    --end=2022-06-30                  # then --bars_csv=bars.csv --dry_run --start=2022-06-01
.venv/bin/python -m experiments.paper_trade --export_bars=bars.csv --model=<artifact> --start=2022-06-01
                                      # the model's own dataset (and the history its Preprocessor needs)

--bars_csv=sample is the bundled sample (sp500-20's last 20 days, 2022-11-30 .. 2022-12-28, after 300 rows
of history; traded whole unless --start or --max_bars say otherwise). The bars CSV: close-only data in the
"wide" layout, a date column (YYYY-MM-DD) and one close column per model symbol plus the benchmark's close
in the --benchmark column (default SPY); OHLC or volume data in the "long" layout,
date,symbol,open,high,low,close,volume. It holds ~300 daily rows of history before the first traded bar (the
Preprocessor's warm-up: the 252-row turbulence window, the features' 33 rows, the window). See
jaxtrade/live/replay.py. A session ends with its summary: bars by status, orders, fills, equity from start
to end and the return, and the costs (fees, spread, impact) paid beyond the fills' notional.
"""

import logging
import os

from absl import app, flags

from experiments import common

_MODEL = flags.DEFINE_string("model", None, "A model artifact directory (e.g. <workdir>/checkpoints/seed_0/"
                             "best_composite), or with --registry a registry ref (name/v3, name@champion). "
                             "Required, except with --export_bars.")
_REGISTRY = flags.DEFINE_string("registry", None, "A registry root: --model is then a ref in it.")
_SYMBOLS = flags.DEFINE_list("symbols", None, "The symbols (default and only choice: the model's).")
_TIMEFRAME = flags.DEFINE_enum("timeframe", "1Day", ["1Min", "5Min", "15Min", "30Min", "1Hour", "4Hour",
                                                     "1Day"], "Bar length.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Simulated fills (SimBroker): nothing is sent to Alpaca.")
_BARS_CSV = flags.DEFINE_string(
    "bars_csv", None, "Replay this CSV's bars instead of Alpaca's (with --dry_run; no keys needed); "
    "'sample': the bundled sample (sp500-20, 2022-11-30 .. 2022-12-28). Layout: close-only data 'wide' "
    "(date,<one close column per model symbol>,<the --benchmark column, e.g. SPY, if the model has a "
    "benchmark>), OHLC/volume data 'long' (date,symbol,open,high,low,close,volume); ~300 daily rows of "
    "history before the first traded bar. --export_bars writes one.")
_EXPORT = flags.DEFINE_string("export_bars", None, "Write a --bars_csv file here from --dataset (default: "
                              "the --model's dataset) for the bars --start .. --end, with the history the "
                              "model needs (--history_rows without a model), and exit.")
_DATASET = flags.DEFINE_string("dataset", None, "--export_bars: the bundled dataset (e.g. sp500-20).")
_HISTORY = flags.DEFINE_integer("history_rows", None, "--export_bars: rows of history before --start "
                                "(default: a --model's warm-up plus 400 rows, so that its moving averages "
                                "match a backtest's, as live sessions fetch; without a model 300, the "
                                "warm-up of a window up to 15).")
_START = flags.DEFINE_string("start", None, "Replay: the first bar (default: the last --max_bars rows); "
                             "--export_bars: the first bar to trade.")
_END = flags.DEFINE_string("end", None, "Replay or --export_bars: the last bar.")
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


def _export() -> None:
    """--export_bars: write the bars CSV and print how to replay it."""
    from jaxtrade.data import load_dataset
    from jaxtrade.live import replay

    spec = None
    if _MODEL.value:
        from jaxtrade.live import runner
        from jaxtrade.train.artifact import load_model

        spec = load_model(_model_path())[1]
    name = _DATASET.value or (spec.data.get("dataset") if spec is not None else None)
    if not name:
        raise ValueError("--export_bars needs --dataset=<bundled dataset> (or a --model trained on one)")
    history = _HISTORY.value
    if history is None:
        history = replay.DEFAULT_HISTORY if spec is None else runner.history_rows(spec.preprocessor)
    first, last, rows = replay.export_bars(load_dataset(name), _EXPORT.value, start=_START.value,
                                           end=_END.value, history=history, benchmark=_BENCHMARK.value)
    print(f"wrote {_EXPORT.value}: {name}, {rows} rows, the bars {first:%Y-%m-%d} .. {last:%Y-%m-%d} after "
          f"{history} rows of history. Replay it:\n.venv/bin/python -m experiments.paper_trade "
          f"--model={_MODEL.value or '<artifact>'} --bars_csv={_EXPORT.value} --dry_run "
          f"--start={first:%Y-%m-%d}", flush=True)


def _model_path() -> str:
    if _REGISTRY.value:
        from jaxtrade.pipeline.registry import Registry

        return Registry(_REGISTRY.value).path(_MODEL.value)
    from jaxtrade.train.offline import require_artifact

    require_artifact(_MODEL.value)
    return _MODEL.value


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    common.setup_logging(common.verbosity_word())
    if _EXPORT.value:
        return _export()
    if not _MODEL.value:
        raise ValueError("--model is required: a model artifact directory, or a registry ref with --registry")
    from jaxtrade.live import replay, runner

    model = _model_path()
    bars_csv, start = _BARS_CSV.value, _START.value
    if bars_csv == "sample":        # its traded bars by default: every row after its history
        bars_csv, start = replay.bundled_sample(), start or (None if _MAX_BARS.value else replay.SAMPLE_START)
    run_id = _RUN_ID.value or runner.default_run_id(model)
    os.makedirs(_JOURNAL_DIR.value, exist_ok=True)
    handler = logging.FileHandler(os.path.join(_JOURNAL_DIR.value, f"{run_id}.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("jaxtrade").addHandler(handler)
    journal = runner.paper_trade(
        model, timeframe_name=_TIMEFRAME.value, symbols=_SYMBOLS.value, dry_run=_DRY_RUN.value,
        bars_csv=bars_csv, start=start, end=_END.value, url_override=_URL.value,
        max_bars=_MAX_BARS.value or None, journal_dir=_JOURNAL_DIR.value, run_id=run_id,
        flatten_before_close_s=_FLATTEN.value, allow_sip=_ALLOW_SIP.value, feed=_FEED.value,
        benchmark=_BENCHMARK.value, cash=_CASH.value, fractional=_FRACTIONAL.value, lead_s=_LEAD.value,
        seed=_SEED.value, cache_dir=_CACHE.value, record_obs=_RECORD_OBS.value, regulatory_fees=_FEES.value,
        on_bar=_line)
    for line in replay.summary_lines(replay.summarize(runner.Journal(journal).records())):
        print(line, flush=True)
    print(journal, flush=True)


if __name__ == "__main__":
    app.run(common.user_errors_exit_2(main))
