"""The acceptance placebo of the overfitting statistics: trained on a market with no skill to find, the
chosen model's deflated Sharpe does not reject "no skill" and its probability of backtest overfitting
is near one half; given a trial with skill in the same ledger, both verdicts flip.

The market is `benchmarks.placebo.placebo_market`: sp500-20's demeaned daily returns, whole dates'
cross-sections drawn i.i.d. with replacement and compounded on the real calendar (close prices and the
index only, so every feature comes from the synthetic prices). No policy that sees only past prices has a
positive expected return there, yet the best validation Sharpe of a population is positive more often
than not. A population of 8 seeds (one compile) trains smoke's tiny network 6 iterations and validates
every 2 on the whole of 2015 (251 returns: 15 rows in each of PBO's 16 CSCV groups): 24 trials in
`trials.json`; the final report writes `overfitting.json` for the chosen model among them.

Bounds from measured runs (`python -m benchmarks.placebo`: markets 0-11 at this size, under the suite's
XLA flags on the 2-core CPU machine): DSR 0.007 .. 0.915 (median 0.44), PBO 0.33 .. 0.91 (median 0.47);
so DSR < 0.95 and PBO >= 0.3. Market 10, the test's, is the one nearest both medians: DSR 0.313, PBO
0.511 (chosen seed_5/it6, validation Sharpe +0.44 a year against E[max] 0.92). With 4 members (12
trials) PBO fell below 0.3 in 2 of 12 markets (0.20, 0.24): too few distinct trials for PBO. Without
demeaning, the survivors' drift stays in the placebo and lifts DSR (markets 0-6 and 10: median 0.71,
up to 0.92): beta a long-only agent gets for nothing, not the null this test is about.

The bounds hold for this ledger, not for every placebo ledger: CSCV splits one validation window, so a
trend realized over that window ranks trials by their exposure to it in every split. At a bigger
budget (`--iterations=30 --eval_every=5 --hidden_dim=64 --n_envs=16 --n_steps=64`: 48 trials that
differ more) markets 0-11 gave PBO 0.02 .. 0.86, below 0.3 in 3 of 12 (market 5: the equal-weight
validation Sharpe was -2.28, the trials' Sharpes correlate -0.58 with their market betas 0.20 .. 1.05,
PBO 0.02; 0.32 on market-residual returns), and DSR >= 0.95 in 1 of 12 (market 0, 0.971). Market 10
passes there too (DSR 0.375, PBO 0.64).

It can fail: on markets with skill to find (`benchmarks.placebo --drift`, markets 0-3 and 10) every run
broke a bound. +0.3% a day on every stock: DSR >= 0.999 in 5 of 5 (PBO 0.11 .. 0.37). +0.8% a day on
ten stocks and -0.8% on the other ten (momentum regimes earn it, reversal loses it, so members leaning
to different regimes rank the same way in every split): PBO < 0.005 in 5 of 5 (DSR 0.06 .. 0.96: the
deflation counts the members' real differences in skill as luck); +-0.4%: PBO 0.01 .. 0.298. Here,
cheaply: a look-ahead trial added to this run's own ledger (each day the best trial's return) is judged
skilled by both statistics (DSR 1.000, PBO 0.00), so the bounds discriminate at this ledger's size.
"""

import json

import numpy as np
import pytest

from benchmarks.placebo import DSR_BAR, PBO_BAR, best_val_sharpe, placebo_config, placebo_market, run_market
from jaxtrade.train.trials import TrialLedger

MARKET_SEED = 10
MEMBERS = 8


@pytest.mark.slow
def test_a_population_trained_on_a_placebo_market_shows_no_skill(tmp_path):
    cfg = placebo_config(MEMBERS)
    market = placebo_market(MARKET_SEED)
    summary, trials, result, _ = run_market(cfg, market, str(tmp_path))
    assert result.compiles == 1

    # Enough trials with finite returns, and enough validation rows for PBO's 16 CSCV groups.
    n_validations = cfg.train.iterations // cfg.train.eval_every
    assert summary["n_trials"] == MEMBERS * n_validations == 24
    assert not [e for e in summary["excluded_trials"] if e["reason"] == "non-finite returns"]
    assert summary["n_periods"] == 251 and summary["n_periods"] // summary["pbo_n_splits"] >= 8
    assert summary["pbo"] is not None, summary["pbo_reason"]

    # The naive numbers are not what the test is about: the best trial's validation Sharpe is luck here.
    naive = (f"market {MARKET_SEED}: chosen {summary['chosen_name']} with validation Sharpe "
             f"{summary['sharpe_annual']:+.2f} a year, best of {summary['n_trials']} trials "
             f"{best_val_sharpe(trials):+.2f}, E[max Sharpe] of as many skill-less trials "
             f"{summary['expected_max_sharpe_annual']:.2f}; Sharpe by split {summary['sharpe_by_split']}")
    assert summary["dsr"] < DSR_BAR, f"DSR {summary['dsr']:.3f} rejects zero skill on a placebo; {naive}"
    assert summary["pbo"] >= PBO_BAR, f"PBO {summary['pbo']:.3f} says the winner generalizes; {naive}"

    # The same bounds call a skilled trial skilled: a look-ahead oracle (each day the best trial's
    # return) added to this run's ledger.
    ledger = TrialLedger.load(str(tmp_path))
    ledger.add("oracle", ledger.returns_matrix().max(axis=1), kind="checkpoint")
    oracle = ledger.summary("oracle")
    assert oracle["n_trials"] == 25 and oracle["pbo"] is not None
    assert oracle["dsr"] >= DSR_BAR and oracle["pbo"] < PBO_BAR, json.dumps(
        {k: oracle[k] for k in ("dsr", "pbo", "sharpe_annual", "expected_max_sharpe_annual")})
    assert np.isfinite(oracle["sharpe_annual"]) and oracle["sharpe_annual"] > best_val_sharpe(trials)
