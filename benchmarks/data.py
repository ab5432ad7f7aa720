"""Data-layer timing: load a bundled dataset and compute all its features (the < 3 s budget).

    .venv/bin/python -m benchmarks.data                                 # sp500-20, 7 repeats
    .venv/bin/python -m benchmarks.data --dataset=factor-etfs --repeats=5

Each repeat builds a fresh MarketData (CSV parse, validation, fill policy, benchmark alignment)
and computes every feature (indicators, turbulence, size proxy); features are cached per object,
so a fresh object per repeat means nothing is reused. It then cuts train/val/test splits and
normalizes (timed separately). The import of jaxtrade.data (which imports jax) is timed once and
reported apart. Prints the median, min and max over repeats.
"""

from __future__ import annotations

from absl import app, flags

from benchmarks.common import Timing, timed

_DATASET = flags.DEFINE_string("dataset", "sp500-20", "Bundled dataset (jaxtrade.data.load_dataset).")
_REPEATS = flags.DEFINE_integer("repeats", 7, "Timed runs (median reported).")


def main(_):
    t_import, data = timed(lambda: __import__("jaxtrade.data", fromlist=["load_dataset"]))
    load, feats, split = [], [], []
    for _ in range(_REPEATS.value):
        t_load, md = timed(lambda: data.load_dataset(_DATASET.value))
        t_feat, f = timed(md.features)
        load.append(t_load)
        feats.append(t_load + t_feat)
        n = md.n_rows
        bounds = dict(train=(None, md.dates[int(n * 0.7)]), val=(None, md.dates[int(n * 0.85)]),
                      test=(None, None))
        t_split, _ = timed(lambda md=md, b=bounds: data.split(md, **b, lookback=30))
        split.append(t_split)
    print(f"{md!r}; {md.n_rows} rows x {md.n_symbols} symbols; features {f.per_symbol.shape} "
          f"market {f.market.shape}")
    print(f"import jaxtrade.data (incl. jax): {t_import:.3f} s (once)")
    for name, ts in (("load", load), ("load + all features", feats), ("split + normalize", split)):
        t = Timing(0.0, tuple(ts))
        print(f"{name:22s} median {t.median:.3f} s  min {t.min:.3f}  max {t.max:.3f}  ({len(ts)} runs)")


if __name__ == "__main__":
    app.run(main)
