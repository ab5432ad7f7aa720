"""`EnvData`: the device-side arrays environments see, and nothing else.

Row t of every array holds what is known at the close of row t's date. Environments build the
observation at step t from rows < t only and trade at row t's close.
"""

from __future__ import annotations

import jax
from flax import struct


@struct.dataclass
class EnvData:
    """float32 device arrays of one split; T dates, N symbols, F features per symbol, M market features.

    close, open, high, low: [T, N] prices in quote currency (> 0). Close-only data repeats close in
        open/high/low.
    volume: [T, N] shares traded per row; zeros where the source has no volume (`has_volume` False).
    features: [T, N, F] causal per-symbol features, normalized with training-split statistics.
    market: [T, M] causal market-wide features (turbulence, benchmark return, ...), normalized likewise.
    turbulence: [T] raw turbulence index (Mahalanobis distance), for the risk gate.
    momentum, volatility, sharpe: [T, N] raw 20-row momentum (log return over 20 rows), 20-row
        volatility of log returns (per row, not annualized) and 20-row Sharpe (mean / std of log
        returns); the factor scores of the portfolio regimes.
    size: [T, N] raw size proxy (larger = bigger company): trailing 20-row mean dollar volume; zeros
        where the data have no volume (`has_size` False: adjusted close-only data such as sp500-20 have
        no causal size proxy, so size factors must not be used). See `jaxtrade.data.features.size_proxy`.
    turbulence_threshold: scalar, default gate threshold (a quantile of the training split's
        turbulence; +inf when the data has fewer than two symbols).
    fees: [T, 4] the US regulatory fee rates in force on each row's date (`jaxtrade.data.fees`,
        columns `FEE_COLUMNS`: SEC rate per unit of currency sold, FINRA TAF per share sold, TAF cap
        per trade, TAF per option contract sold); NaN rows where the schedule does not cover the date.
        None for hand-built data (then `env.costs.regulatory_fees` must be "flat" or "none").
    fee_gap: static, the first traded date ('YYYY-MM-DD', rows >= start) the fee schedule does not
        cover, or None; envs charging the schedule refuse such data when made.
    day: [T] int32 calendar day of each row (days since 1970-01-01, the date's midnight): option
        expiries and day counts. None for hand-built data.
    rollover: [T] int32 FX value day of each row (`jaxtrade.data.dates.rollover_days`): intraday, the
        17:00 New York rollovers since 1970; daily, the calendar day. rollover[t+1] - rollover[t] is the
        nights of swap a position held from row t to row t+1 earns or pays. None for hand-built data.
    aux: {name: [T] float32} the split's `aux` series (e.g. "iv"), raw; empty where there are none.
    start: static int, the number of history rows before the first row that may be traded (a
        split's lookback). Rows < start belong to the data before this split: environments check
        `window <= start` and never trade them.
    valid_rows: None, or an int32 scalar (traced) when the arrays were padded to a longer T by
        `pad_rows`: rows >= valid_rows are padding (copies of the last row) that random-start
        episodes never reach. Walk-forward pads its growing training windows to one shape so that
        every fold reuses one compiled iteration.
    start_count: None, or int32 [T] (traced): the running count of the rows <= t on which a
        random-start episode may begin (row t may iff the count steps up at t). Set, it replaces the
        uniform start over `start .. valid_rows - 1 - episode_length`: episodes start uniformly on the
        rows it allows (walk-forward's CPCV mode: only rows whose window and episode lie inside one
        training block). None (every split `Split.to_device` makes) changes nothing.
    """

    close: jax.Array
    open: jax.Array
    high: jax.Array
    low: jax.Array
    volume: jax.Array
    features: jax.Array
    market: jax.Array
    turbulence: jax.Array
    momentum: jax.Array
    volatility: jax.Array
    sharpe: jax.Array
    size: jax.Array
    turbulence_threshold: jax.Array
    fees: jax.Array | None = None
    fee_gap: str | None = struct.field(pytree_node=False, default=None)
    day: jax.Array | None = None
    rollover: jax.Array | None = None
    aux: dict = struct.field(default_factory=dict)
    start: int = struct.field(pytree_node=False, default=0)
    has_volume: bool = struct.field(pytree_node=False, default=False)
    has_size: bool = struct.field(pytree_node=False, default=False)
    periods_per_year: float = struct.field(pytree_node=False, default=252.0)
    valid_rows: jax.Array | None = None
    start_count: jax.Array | None = None

    @property
    def n_rows(self) -> int:
        return self.close.shape[0]

    @property
    def n_valid_rows(self) -> int:
        """Host int: the rows that are data (n_rows unless padded by `pad_rows`)."""
        return self.n_rows if self.valid_rows is None else int(self.valid_rows)

    @property
    def n_assets(self) -> int:
        return self.close.shape[1]


_ROW_FIELDS = ("close", "open", "high", "low", "volume", "features", "market", "turbulence", "momentum",
               "volatility", "sharpe", "size", "fees", "day", "rollover", "start_count")


def pad_rows(data: EnvData, n_rows: int) -> EnvData:
    """`data` with every [T, ...] array padded to `n_rows` by repeating its last row, and `valid_rows`
    = T: the same shapes for windows of different lengths (one compile), the same episodes (random
    starts stay in rows < valid_rows). n_rows < T raises ValueError; n_rows == T pads nothing."""
    import jax.numpy as jnp

    t = data.n_valid_rows
    if n_rows < data.n_rows:
        raise ValueError(f"pad_rows: n_rows={n_rows} is less than the data's {data.n_rows} rows")

    def pad(x):
        if x is None:
            return None
        x = x[:t]
        return jnp.concatenate([x, jnp.repeat(x[-1:], n_rows - t, axis=0)], axis=0)

    changes = {k: pad(getattr(data, k)) for k in _ROW_FIELDS}
    return data.replace(aux={k: pad(v) for k, v in data.aux.items()},
                        valid_rows=jnp.asarray(t, jnp.int32), **changes)


def astype(data: EnvData, dtype, **replace) -> EnvData:
    """`data` with every floating array cast to `dtype`, then the fields in `replace` (host arrays,
    e.g. float64 closes) set as arrays of `dtype`. float64 needs `jax.enable_x64(True)` around every
    use: the environments then compute in float64, which is how the exact ledger checks run them."""
    import jax.numpy as jnp

    def cast(x):
        return x.astype(dtype) if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree.map(cast, data).replace(**{k: jnp.asarray(v, dtype) for k, v in replace.items()})
