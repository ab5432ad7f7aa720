"""`Preprocessor`: everything fitted on the training split, applied unchanged to any later data.

The contract, in the order things happen:
1. `Preprocessor.fit(md, train=(start, end), window=W)` computes md's causal features (row t uses
   rows <= t only) and fits, on the training range's traded rows only: the normalization statistics
   (`features.fit_norm`) and the turbulence threshold (the `turbulence_quantile` of the training
   rows' turbulence; +inf with fewer than two symbols). Nothing after the training range's last row
   enters any of them (a test perturbs every later row and checks them bit for bit).
2. It also records what the fitted numbers mean: the symbols, the feature and market feature names,
   the window W (history rows every split carries), the turbulence window and quantile, the training
   date range, and `fingerprint(md)` of the data it was fitted on.
3. `pre.transform(md, (start, end))` cuts any MarketData with the same symbols and features (the
   training data, the same file extended, a live feed) into a `Split` normalized with those
   statistics: W history rows, then the traded rows of the range.
4. `pre.save(directory)` writes `preprocessor.json` (names, sizes, dates, fingerprint) and
   `preprocessor.npz` (the statistics and the threshold, float64); `Preprocessor.load(directory)`
   reads them back (no pickle) and equals the saved one.

`split(md, train=..., val=..., test=..., lookback=W)` is fit on train + transform of each range.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from jaxtrade.data import features as feats
from jaxtrade.data.dates import format_date
from jaxtrade.data.errors import DataError
from jaxtrade.data.market import MarketData
from jaxtrade.data.splits import Split, Splits

JSON_FILE = "preprocessor.json"
ARRAYS_FILE = "preprocessor.npz"
FORMAT_VERSION = 1
_ARRAYS = ("feature_mean", "feature_std", "market_mean", "market_std", "turbulence_threshold")
_JSON_KEYS = ("format_version", "fingerprint", "symbols", "feature_names", "market_names", "window",
              "turbulence_window", "turbulence_quantile", "train")


def fingerprint(md: MarketData) -> str:
    """SHA-256 (hex) of md's dates, symbols and every array (close, open, high, low, volume, benchmark).

    The same data give the same hash wherever they were loaded from (`source`, `benchmark_name` and
    `periods_per_year` are labels, not data, and are left out); a changed price, date or symbol, or
    an array present in one and absent in the other, changes it.
    """
    h = hashlib.sha256(b"jaxtrade.MarketData v1")

    def put(tag: str, payload: bytes):
        h.update(f"\0{tag}\0{len(payload)}\0".encode())
        h.update(payload)

    put("dates", np.ascontiguousarray(md.dates.asi8, dtype="<i8").tobytes())
    put("symbols", json.dumps(list(md.symbols)).encode())
    for name in ("close", "open", "high", "low", "volume", "benchmark"):
        x = getattr(md, name)
        if x is None:
            put(f"{name}:absent", b"")
        else:
            put(f"{name}:{x.shape}", np.ascontiguousarray(x, dtype="<f8").tobytes())
    for name in sorted(md.aux):       # no aux: the hash of data from before aux existed
        put(f"aux:{name}", np.ascontiguousarray(md.aux[name], dtype="<f8").tobytes())
    return h.hexdigest()


# Date ranges -> row indices.

def _bound(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tz is not None else ts


def _last_row(dates: pd.DatetimeIndex, end) -> int:
    """Index of the last row on or before `end`; a date-only end includes that whole day (intraday)."""
    ts = _bound(end)
    if ts == ts.normalize():
        return int(dates.searchsorted(ts + pd.Timedelta(days=1), "left")) - 1
    return int(dates.searchsorted(ts, "right")) - 1


def _past_end(dates: pd.DatetimeIndex, end) -> bool:
    """Whether a range end lies after the last row (a date-only end covers its whole day)."""
    ts = _bound(end)
    last = dates[-1]
    return ts.normalize() > last.normalize() if ts == ts.normalize() else ts > last


def _rows(dates: pd.DatetimeIndex, rng, default_start: int, *, name: str, source: str) -> tuple[int, int]:
    """(first, last) traded row indices (inclusive) of a (start, end) date range; None bounds default
    to `default_start` and the last row; an int bound is a row index of the data (walk-forward
    folds, exact where a date-only bound of intraday data would mean a whole day)."""
    if not isinstance(rng, (tuple, list)) or len(rng) != 2:
        raise ValueError(f"{name} must be a (start, end) pair of dates, got {rng!r}")
    is_row = [isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in rng]
    for b, row in zip(rng, is_row, strict=True):
        if row and not 0 <= b < len(dates):
            raise DataError("split-rows", source=source, row=str(b),
                            detail=f"the {name} split's row index {b} is outside the data's rows "
                                   f"0 .. {len(dates) - 1}")
    lo = (default_start if rng[0] is None else int(rng[0]) if is_row[0]
          else int(dates.searchsorted(_bound(rng[0]), "left")))
    hi = (len(dates) - 1 if rng[1] is None else int(rng[1]) if is_row[1] else _last_row(dates, rng[1]))
    if hi - lo + 1 < 2:
        raise DataError("split-empty", source=source, row=f"{rng[0]} .. {rng[1]}",
                        detail=f"the {name} split holds {max(hi - lo + 1, 0)} rows of the data "
                               f"({format_date(dates[0])} .. {format_date(dates[-1])}); it needs at least 2")
    if rng[1] is not None and not is_row[1] and _past_end(dates, rng[1]):
        warnings.warn(f"{source}: the {name} split asks for data to {rng[1]}, but the data end on "
                      f"{format_date(dates[-1])}; the {name} split is cut there and covers "
                      f"{format_date(dates[lo])} .. {format_date(dates[hi])}", UserWarning, stacklevel=3)
    return lo, hi


def _check_history(md: MarketData, lo: int, *, name: str, window: int, first_valid: int):
    """DataError "split-history" unless `window` rows after the feature warm-up precede row lo."""
    earliest = first_valid + window
    if lo < earliest:
        raise DataError("split-history", source=md.source, row=format_date(md.dates[lo]),
                        detail=f"the {name} split needs {window} lookback rows after {first_valid} "
                               f"feature warm-up rows before its start; earliest possible start is "
                               + (format_date(md.dates[earliest]) if earliest < md.n_rows else "none"))


def _check_window(window: int, turbulence_quantile: float, *, key: str):
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
        raise ValueError(f"{key} must be an int >= 0, got {window!r}")
    if not 0.0 <= turbulence_quantile <= 1.0:
        raise ValueError(f"turbulence_quantile must be in [0, 1], got {turbulence_quantile}")


@dataclasses.dataclass(frozen=True, eq=False)
class Preprocessor:
    """What was fitted on the training split, and what it means. Build with `Preprocessor.fit`.

    stats: NormStats, float64 feature mean/std [F] and market mean/std [M] over the training rows.
    turbulence_threshold: float, the turbulence_quantile of the training rows' turbulence (+inf, N < 2).
    feature_names (F), market_names (M): the feature columns the statistics belong to, in order.
    window: history rows before each split's first traded row (`Split.start`, `EnvData.start`).
    turbulence_window: trailing rows of the turbulence covariance; turbulence_quantile: as above.
    train: (first, last) traded dates of the training split (pd.Timestamp).
    symbols: the N symbols, in order. fingerprint: `fingerprint(md)` of the data it was fitted on.
    """

    stats: feats.NormStats
    turbulence_threshold: float
    feature_names: tuple[str, ...]
    market_names: tuple[str, ...]
    window: int
    turbulence_window: int
    turbulence_quantile: float
    train: tuple[pd.Timestamp, pd.Timestamp]
    symbols: tuple[str, ...]
    fingerprint: str

    @classmethod
    def fit(cls, md: MarketData, train, *, window: int, turbulence_quantile: float = 0.99,
            turbulence_window: int = feats.TURBULENCE_WINDOW) -> Preprocessor:
        """Fit on the traded rows of md's training range (start, end), inclusive dates; a None start
        is the earliest row with `window` history rows after the feature warm-up, a None end the last
        row. Raises DataError "split-empty" / "split-history" as `split` does."""
        _check_window(window, turbulence_quantile, key="window")
        f = md.features(turbulence_window)
        lo, hi = _rows(md.dates, train, f.first_valid + window, name="train", source=md.source)
        _check_history(md, lo, name="train", window=window, first_valid=f.first_valid)
        return cls._fit_rows(md, lo, hi, window=window, turbulence_quantile=turbulence_quantile,
                             turbulence_window=turbulence_window)

    @classmethod
    def _fit_rows(cls, md: MarketData, lo: int, hi: int, *, window: int, turbulence_quantile: float,
                  turbulence_window: int) -> Preprocessor:
        f = md.features(turbulence_window)
        stats = feats.fit_norm(f.per_symbol[lo:hi + 1], f.market[lo:hi + 1])
        threshold = (float(np.quantile(f.turbulence[lo:hi + 1], turbulence_quantile))
                     if md.n_symbols >= 2 else float("inf"))
        return cls(stats, threshold, tuple(f.feature_names), tuple(f.market_names), int(window),
                   int(turbulence_window), float(turbulence_quantile), (md.dates[lo], md.dates[hi]),
                   tuple(md.symbols), fingerprint(md))

    def transform(self, md: MarketData, rng, *, name: str = "test") -> Split:
        """The Split of md's date range (start, end), inclusive, normalized with the fitted statistics,
        with `window` history rows before its first traded row. A None start is the earliest row with
        enough history, a None end the last row.

        Raises DataError: "preprocessor-symbols" (md's symbols differ from the fitted ones),
        "preprocessor-features" (its feature or market feature names differ, e.g. no benchmark),
        "split-empty" (< 2 rows), "split-history" (fewer than window rows after the warm-up).
        """
        if tuple(md.symbols) != self.symbols:
            missing = [s for s in self.symbols if s not in md.symbols]
            extra = [s for s in md.symbols if s not in self.symbols]
            raise DataError("preprocessor-symbols", source=md.source,
                            detail=f"the preprocessor was fitted on symbols {list(self.symbols)}, the data "
                                   f"has {list(md.symbols)} (missing {missing}, extra {extra}"
                                   + (", or another order" if not missing and not extra else "") + ")")
        f = md.features(self.turbulence_window)
        for what, got, want in (("feature", f.feature_names, self.feature_names),
                                ("market feature", f.market_names, self.market_names)):
            if tuple(got) != want:
                raise DataError("preprocessor-features", source=md.source,
                                detail=f"the preprocessor was fitted on {what} names {list(want)}, the data "
                                       f"gives {list(got)}")
        lo, hi = _rows(md.dates, rng, f.first_valid + self.window, name=name, source=md.source)
        _check_history(md, lo, name=name, window=self.window, first_valid=f.first_valid)
        return self._cut(md, lo, hi, name=name)

    def _cut(self, md: MarketData, lo: int, hi: int, *, name: str) -> Split:
        """Rows [lo - window, hi] of md as a Split; lo and hi already checked."""
        f = md.features(self.turbulence_window)
        a, b = lo - self.window, hi + 1
        per_symbol, market = feats.apply_norm(f.per_symbol[a:b], f.market[a:b], self.stats)
        rows = lambda x: None if x is None else x[a:b]
        return Split(name, md.dates[a:b], self.window, md.symbols, rows(md.close), rows(md.open),
                     rows(md.high), rows(md.low), rows(md.volume), rows(md.benchmark), md.benchmark_name,
                     per_symbol, market, f.feature_names, f.market_names, f.turbulence[a:b],
                     f.momentum[a:b], f.volatility[a:b], f.sharpe[a:b], f.size[a:b],
                     self.turbulence_threshold, md.periods_per_year, md.source, self.stats,
                     aux={k: v[a:b] for k, v in md.aux.items()})

    # Saving and loading.

    def to_json(self) -> dict:
        """The JSON half of `save`: everything but the arrays."""
        return {"format_version": FORMAT_VERSION, "fingerprint": self.fingerprint,
                "symbols": list(self.symbols), "feature_names": list(self.feature_names),
                "market_names": list(self.market_names), "window": self.window,
                "turbulence_window": self.turbulence_window,
                "turbulence_quantile": self.turbulence_quantile,
                "train": [ts.isoformat() for ts in self.train]}

    def save(self, directory) -> Path:
        """Write `preprocessor.json` and `preprocessor.npz` into directory (created); returns it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = dict(self.stats._asdict(), turbulence_threshold=np.float64(self.turbulence_threshold))
        np.savez(directory / ARRAYS_FILE, **{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()})
        (directory / JSON_FILE).write_text(json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n")
        return directory

    @classmethod
    def load(cls, directory) -> Preprocessor:
        """Read what `save` wrote. Raises DataError "preprocessor-file" naming the file and the key."""
        directory = Path(directory)
        path = directory / JSON_FILE
        bad = lambda p, detail: DataError("preprocessor-file", source=str(p), detail=detail)
        try:
            meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise bad(path, f"cannot read it as JSON ({e})") from e
        if not isinstance(meta, dict):
            raise bad(path, f"expected a JSON object, got {type(meta).__name__}")
        missing = [k for k in _JSON_KEYS if k not in meta]
        unknown = sorted(set(meta) - set(_JSON_KEYS))
        if missing or unknown:
            raise bad(path, f"missing keys {missing}, unknown keys {unknown}; expected {list(_JSON_KEYS)}")
        if meta["format_version"] != FORMAT_VERSION:
            raise bad(path, f"key 'format_version' is {meta['format_version']!r}; this jaxtrade reads "
                            f"version {FORMAT_VERSION}")
        for key in ("symbols", "feature_names", "market_names"):
            if not isinstance(meta[key], list) or not all(isinstance(s, str) for s in meta[key]):
                raise bad(path, f"key {key!r} must be a list of strings, got {meta[key]!r}")
        for key in ("window", "turbulence_window"):
            if isinstance(meta[key], bool) or not isinstance(meta[key], int) or meta[key] < 0:
                raise bad(path, f"key {key!r} must be an int >= 0, got {meta[key]!r}")
        q = meta["turbulence_quantile"]
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
            raise bad(path, f"key 'turbulence_quantile' must be a number in [0, 1], got {q!r}")
        if not isinstance(meta["fingerprint"], str):
            raise bad(path, f"key 'fingerprint' must be a string, got {meta['fingerprint']!r}")
        if not isinstance(meta["train"], list) or len(meta["train"]) != 2:
            raise bad(path, f"key 'train' must be [first, last] dates, got {meta['train']!r}")
        try:
            train = tuple(pd.Timestamp(s) for s in meta["train"])
        except (TypeError, ValueError) as e:
            raise bad(path, f"key 'train' holds {meta['train']!r}, not dates ({e})") from e

        apath = directory / ARRAYS_FILE
        n_f, n_m = len(meta["feature_names"]), len(meta["market_names"])
        shapes = dict(feature_mean=(n_f,), feature_std=(n_f,), market_mean=(n_m,), market_std=(n_m,),
                      turbulence_threshold=())
        try:
            with np.load(apath, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise bad(apath, f"cannot read it as an npz of plain arrays ({e})") from e
        if sorted(arrays) != sorted(_ARRAYS):
            raise bad(apath, f"holds arrays {sorted(arrays)}, expected {sorted(_ARRAYS)}")
        for k, x in arrays.items():
            if x.dtype != np.float64 or x.shape != shapes[k]:
                raise bad(apath, f"array {k!r} is {x.dtype} {x.shape}, expected float64 {shapes[k]} "
                                 f"(from the names in {JSON_FILE})")
        stats = feats.NormStats(*(arrays[k] for k in feats.NormStats._fields))
        return cls(stats, float(arrays["turbulence_threshold"]), tuple(meta["feature_names"]),
                   tuple(meta["market_names"]), meta["window"], meta["turbulence_window"], float(q),
                   train, tuple(meta["symbols"]), meta["fingerprint"])

    def __eq__(self, other) -> bool:
        if not isinstance(other, Preprocessor):
            return NotImplemented
        same = lambda x, y: x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)
        return (all(same(np.asarray(x), np.asarray(y)) for x, y in zip(self.stats, other.stats, strict=True))
                and (self.turbulence_threshold == other.turbulence_threshold
                     or math.isnan(self.turbulence_threshold) and math.isnan(other.turbulence_threshold))
                and all(getattr(self, f.name) == getattr(other, f.name)
                        for f in dataclasses.fields(self) if f.name not in ("stats", "turbulence_threshold")))

    __hash__ = None

    def __repr__(self) -> str:
        return (f"Preprocessor(fitted on {format_date(self.train[0])} .. {format_date(self.train[1])} of "
                f"{len(self.symbols)} symbols, {len(self.feature_names)} features + {len(self.market_names)} "
                f"market, window {self.window}, turbulence threshold {self.turbulence_threshold:.4g}, "
                f"data {self.fingerprint[:12]})")


def split(md: MarketData, *, train, val=None, test=None, lookback: int = 30,
          turbulence_quantile: float = 0.99, turbulence_window: int = feats.TURBULENCE_WINDOW) -> Splits:
    """`fit_split(...)`'s Splits (see there)."""
    return fit_split(md, train=train, val=val, test=test, lookback=lookback,
                     turbulence_quantile=turbulence_quantile, turbulence_window=turbulence_window)[1]


def fit_split(md: MarketData, *, train, val=None, test=None, lookback: int = 30,
              turbulence_quantile: float = 0.99, turbulence_window: int = feats.TURBULENCE_WINDOW
              ) -> tuple[Preprocessor, Splits]:
    """(the Preprocessor fitted once on train, the Splits). Cuts md by date into train / val / test,
    each with `lookback` rows of history before its start: `Preprocessor.fit` on train (its window is
    `lookback`), then `transform` of each range.

    Args:
      md: the MarketData.
      train, val, test: (start, end) dates, inclusive (str, Timestamp, date). A date-only end includes
        that whole day. None as train's start means the earliest row with enough history; None as
        val's or test's start means the row after the previous split; None as an end means the last row.
        val and test may be None (short files).
      lookback: history rows before each split's start (the environment's observation window).
      turbulence_quantile: quantile of the training split's turbulence used as the gate threshold.
      turbulence_window: trailing rows of the turbulence covariance.

    Raises DataError: "split-empty" (< 2 rows), "split-overlap" (splits overlap or are out of
    chronological order), "split-history" (fewer than lookback rows after the feature warm-up
    before the split's start). Normalization statistics come from the training split's traded rows
    only and are applied unchanged to val and test.
    """
    _check_window(lookback, turbulence_quantile, key="lookback")
    f = md.features(turbulence_window)
    earliest = f.first_valid + lookback
    ranges, prev_end = {}, None
    for name, rng in (("train", train), ("val", val), ("test", test)):
        if rng is None:
            continue
        default = earliest if prev_end is None else prev_end[1] + 1
        lo, hi = _rows(md.dates, rng, default, name=name, source=md.source)
        if prev_end is not None and lo <= prev_end[1]:
            raise DataError("split-overlap", source=md.source, row=format_date(md.dates[lo]),
                            detail=f"{name} starts on or before the {prev_end[0]} split's last date "
                                   f"{format_date(md.dates[prev_end[1]])}; splits must be disjoint and in "
                                   "order train < val < test")
        _check_history(md, lo, name=name, window=lookback, first_valid=f.first_valid)
        ranges[name] = (lo, hi)
        prev_end = (name, hi)
    pre = Preprocessor._fit_rows(md, *ranges["train"], window=lookback,
                                 turbulence_quantile=turbulence_quantile, turbulence_window=turbulence_window)
    cut = lambda name: pre._cut(md, *ranges[name], name=name) if name in ranges else None
    return pre, Splits(cut("train"), cut("val"), cut("test"))
