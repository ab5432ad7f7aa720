"""The options env's baselines run through the env's own chain, fills and fees: cash never trades,
buy-and-hold of the underlying holds it, `bxm` sells covered calls on all of it, `put` sells
cash-secured puts from cash. All of them in the agent's world: the turbulence gate acts on them as on
the agent (2018, measured: bxm +4.11% gated against +4.67% gate-off), and the gate-free buy-and-hold is
a separate, labelled reference row. Cash earns the T-bill rate (+1.60% over Jan-Nov 2018) and held
shares the 2% dividend yield (the index's +2.39% becomes +4.27%)."""

import pytest

from experiments.configs import options_quick
from jaxtrade import eval as evaluate
from jaxtrade.train import setup


@pytest.fixture(scope="module")
def results():
    cfg = options_quick.get_config()
    cfg.train.iterations = 1
    s = setup.build(cfg)
    out = evaluate.baselines(s.test_env, s.test_params, s.splits.test,
                             include=["cash", "underlying_buy_hold", "bxm", "put",
                                      "underlying_buy_hold_no_gate"])
    return {k: v[0] for k, v in out.items()}


def test_options_baselines_trade_what_they_say(results):
    growth = {k: f["value"].iloc[-1] / f["value"].iloc[0] - 1 for k, f in results.items()}
    closed = {k: int(f["trade_closed"].sum()) for k, f in results.items()}
    costs = {k: float(f["costs"].sum()) for k, f in results.items()}
    assert growth["cash"] == pytest.approx(0.0160, abs=5e-4) and closed["cash"] == 0 and costs["cash"] == 0
    assert closed["underlying_buy_hold"] == 0 and costs["underlying_buy_hold"] == 0
    # the index, Jan-Nov 2018 (+2.39%), with the dividend yield on the shares and interest on spare cash
    assert growth["underlying_buy_hold"] == pytest.approx(0.0427, abs=5e-4)
    # A covered call every ~3 weeks, each closed and paid for; with no cash, the premium pays the fees.
    assert closed["bxm"] >= 10 and costs["bxm"] > 0 and growth["bxm"] == pytest.approx(0.0411, abs=2e-3)
    assert closed["put"] >= 10 and costs["put"] > 0 and growth["put"] == pytest.approx(0.0064, abs=2e-3)


def test_baselines_trade_with_the_agents_gate(results):
    """Every baseline sees the gate the agent sees (26 gated days of 2018); only the labelled
    reference row runs without it."""
    gated = {k: int(f["gate"].sum()) for k, f in results.items()}
    assert gated["bxm"] == gated["put"] == gated["underlying_buy_hold"] == 26
    assert gated["underlying_buy_hold_no_gate"] == 0
    assert results["underlying_buy_hold_no_gate"].attrs["label"].endswith("(gate off: reference only)")
