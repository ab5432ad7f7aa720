"""The nested env config and the registry: overrides reach params, unknown keys are named, the
window and ADV window are checked against EnvData.start, and episodes start at EnvData.start."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from envs_testlib import envdata_from_close, synthetic_close

from jaxtrade import envs
from jaxtrade.envs import market

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
W = 8


# --------------------------------------------------------------------------------- nested config


def test_nested_config_reaches_params(tiny_data):
    cfg = dict(name="portfolio", window=4, episode_length=10, random_start=False, initial_cash=5e4,
               ruin_floor=0.2, factor_tilt=0.6, turbulence_threshold=3.0, action_space="weights",
               costs=dict(spread_bps=1.5, commission_bps=0.5, adv_window=7),
               reward=dict(dsr_weight=0.25, reward_scale=2.0))
    for config in (cfg, ml_collections.ConfigDict(cfg)):
        env, params = envs.make("portfolio", tiny_data, config)
        assert (params.window, params.episode_length, params.random_start) == (4, 10, False)
        assert params.costs.adv_window == 7 and isinstance(params.costs.adv_window, int)
        got = {k: float(getattr(params, k)) for k in ("initial_cash", "ruin_floor", "factor_tilt",
                                                      "turbulence_threshold")}
        assert got == {"initial_cash": 5e4, "ruin_floor": np.float32(0.2), "factor_tilt": np.float32(0.6),
                       "turbulence_threshold": 3.0}
        assert float(params.costs.spread_bps) == 1.5 and float(params.costs.commission_bps) == 0.5
        assert float(params.costs.slippage_bps) == 5.0                     # untouched: the default
        assert float(params.reward.dsr_weight) == 0.25 and float(params.reward.reward_scale) == 2.0
        assert not env.discrete and env.action_dim == tiny_data.n_assets + 1
    # Defaults: CostParams' and RewardParams' own, the data's gate threshold, no impact without volume,
    # the dated fee schedule.
    _, params = envs.make("portfolio", tiny_data, dict(window=W, episode_length=16))
    assert float(params.costs.spread_bps) == envs.CostParams().spread_bps == 2.0
    assert float(params.costs.slippage_bps) == 5.0 and float(params.costs.commission_bps) == 0.0
    assert params.costs.impact_model == "none" and params.costs.regulatory_fees == "us_schedule"
    assert float(params.reward.log_return_weight) == 1.0
    assert float(params.turbulence_threshold) == float(tiny_data.turbulence_threshold)


def test_unknown_keys_name_the_dotted_key_and_the_known_ones(tiny_data):
    cases = [
        (dict(window=W, costs=dict(spred_bps=1.0)),
         r"'env\.costs\.spred_bps'.*known keys of env\.costs.*spread_bps"),
        (dict(window=W, reward=dict(dsr=1.0)), r"'env\.reward\.dsr'.*known keys of env\.reward.*dsr_weight"),
        (dict(window=W, windw=3), r"'env\.windw'.*known keys of env.*'window'"),
        (dict(window=W, spread_bps=1.0), r"'env\.spread_bps'"),             # no routing by field name
        (dict(window=W, asset=1), r"'env\.asset'.*'portfolio'"),            # single's key, not portfolio's
        (dict(window=W, costs=2.0), r"env\.costs must be a mapping"),
        (dict(name="single", window=W), r"env\.name is 'single'"),
    ]
    for config, match in cases:
        with pytest.raises(ValueError, match=match):
            envs.make("portfolio", tiny_data, config)
    with pytest.raises(ValueError, match=r"'env\.factor_tilt'.*'single'"):
        envs.make("single", tiny_data, dict(window=W, factor_tilt=0.5))   # portfolio's key
    with pytest.raises(ValueError,
                       match=r"env\.action_space must be one of \('positions', 'exposure', 'long_short'\)"):
        envs.make("single", tiny_data, dict(window=W, action_space="weights", random_start=False))
    with pytest.raises(ValueError, match=r"env\.action_space must be one of"):
        envs.make("portfolio", tiny_data, dict(window=W, action_space="regime"))
    with pytest.raises(ValueError, match=r"unknown environment 'nope'.*portfolio.*single"):
        envs.make("nope", tiny_data)


def test_registry():
    assert {"portfolio", "single"} <= set(envs.registered())
    default = envs.default_config("single")
    assert default["name"] == "single" and default["asset"] == 0 and default["action_space"] == "positions"
    assert set(default["costs"]) == {f for f in envs.CostParams.__dataclass_fields__}
    assert set(default["reward"]) == {f for f in envs.RewardParams.__dataclass_fields__}
    with pytest.raises(ValueError, match="unknown param groups"):
        envs.register("bad", lambda data, config: None, param_groups=("costz",))

    seen = {}

    def factory(data, config):
        seen.update(config)
        return "env", "params"

    envs.register("echo", factory, param_groups=("reward",), defaults={"speed": 1})
    try:
        assert "echo" in envs.registered()
        assert envs.make("echo", None, {"speed": 3, "reward": {"dsr_weight": 1.0}}) == ("env", "params")
        assert seen == {"speed": 3, "reward": {"dsr_weight": 1.0}}
        with pytest.raises(ValueError, match=r"'env\.costs'.*'echo'"):     # echo has no costs group
            envs.make("echo", None, {"costs": {}})
    finally:
        envs.registry._REGISTRY.pop("echo")


def _parse(args):
    from absl import flags
    from ml_collections import config_flags

    fv = flags.FlagValues()
    argv = ["prog", f"--config={os.path.join(ROOT, 'experiments', 'configs', 'smoke.py')}", *args]
    config_flags.DEFINE_config_file("config", None, "config", flag_values=fv, lock_config=True, sys_argv=argv)
    fv(argv)
    return fv.config


def test_command_line_overrides_of_nested_env_fields_reach_params(tiny_data):
    cfg = _parse(["--config.env.costs.spread_bps=1.0", "--config.env.reward.dsr_weight=0.5",
                  "--config.env.costs.adv_window=6", "--config.env.turbulence_threshold=4.5",
                  "--config.env.window=3"])
    from jaxtrade.train.setup import env_config_of

    _, params = envs.make(cfg.env.name, tiny_data, env_config_of(cfg))
    assert float(params.costs.spread_bps) == 1.0 and float(params.reward.dsr_weight) == 0.5
    assert params.costs.adv_window == 6 and params.window == 3
    assert float(params.turbulence_threshold) == 4.5
    # The untouched file reaches the defaults.
    _, params = envs.make(cfg.env.name, tiny_data, env_config_of(_parse([])))
    assert float(params.costs.spread_bps) == 2.0 and float(params.turbulence_threshold) == np.inf
    # A misspelt nested key: the flag parser names it and suggests the real one ...
    with pytest.raises(AttributeError, match="spread_bps"):
        _parse(["--config.env.costs.spred_bps=1.0"])
    # ... and so does make, for a config that got one some other way.
    bad = _parse([])
    bad.unlock()
    bad.env.costs.spred_bps = 1.0
    with pytest.raises(ValueError, match=r"'env\.costs\.spred_bps'"):
        envs.make(bad.env.name, tiny_data, env_config_of(bad))


def test_auto_action_space_follows_the_agents_action_kinds(tiny_data):
    """env.action_space="auto" (the experiment configs' default) is the regimes for PPO (discrete
    first), the continuous weights for an agent that acts only in continuous actions, and the
    single env's continuous exposure; an explicit value is kept; make refuses "auto" itself."""
    choose = envs.choose_action_space
    both = ("discrete", "continuous")
    assert choose("portfolio", dict(action_space="auto"), both)["action_space"] == "regimes"
    assert choose("portfolio", dict(action_space="auto"), ("continuous",))["action_space"] == "weights"
    assert choose("single", dict(action_space="auto"), ("continuous",))["action_space"] == "exposure"
    assert choose("single", dict(action_space="auto"), ("discrete",))["action_space"] == "positions"
    assert choose("portfolio", dict(action_space="weights"), ("discrete",))["action_space"] == "weights"
    with pytest.raises(ValueError, match=r"environment 'options' offers no choice"):
        choose("options", dict(action_space="auto"), ("continuous",))
    with pytest.raises(ValueError, match=r"env\.action_space='auto' is chosen from the agent"):
        envs.make("portfolio", tiny_data, dict(window=W, action_space="auto"))
    from jaxtrade.train.setup import env_config_of

    cfg = _parse([])
    assert cfg.env.action_space == "auto" and env_config_of(cfg)["action_space"] == "regimes"


# ------------------------------------------------------------------------ window and EnvData.start


def test_window_beyond_the_history_is_refused(tiny_data):
    assert tiny_data.start == W
    envs.make("portfolio", tiny_data, dict(window=W, episode_length=16))   # window == start: fine
    with pytest.raises(ValueError, match=r"env\.window=9 .*EnvData\.start=8"):
        envs.make("portfolio", tiny_data, dict(window=W + 1))
    with pytest.raises(ValueError, match=r"env\.window=30 .*EnvData\.start=8"):
        envs.make("single", tiny_data)                                      # the default window 30


def test_adv_window_checked_when_the_volume_model_is_on():
    close = synthetic_close(t=48, n=2)
    data = envdata_from_close(close, start=W, volume=np.full(close.shape, 1e5))
    with pytest.raises(ValueError, match=r"env\.costs\.adv_window=30 .*EnvData\.start=8"):
        envs.make("portfolio", data, dict(window=W, episode_length=16))    # default adv_window 30
    cfg = dict(window=W, episode_length=16)
    _, params = envs.make("portfolio", data, dict(cfg, costs=dict(adv_window=W)))
    assert params.costs.impact_model == "sqrt_adv"
    # Without the square-root law on volume the ADV window is never read, so it is not checked.
    for model in ("seed", "none"):
        _, params = envs.make("portfolio", data, dict(cfg, costs=dict(impact_model=model)))
        assert params.costs.impact_model == model


def test_impact_and_fee_modes_are_checked_against_the_data():
    close = synthetic_close(t=48, n=2)
    data = envdata_from_close(close, start=W)                            # no volume
    cfg = dict(window=W, episode_length=16)
    with pytest.raises(ValueError, match=r"impact_model='sqrt_adv' needs data with volume"):
        envs.make("portfolio", data, dict(cfg, costs=dict(impact_model="sqrt_adv")))
    with pytest.raises(ValueError, match=r"assumed_adv_value > 0"):
        envs.make("portfolio", data, dict(cfg, costs=dict(impact_model="assumed_adv")))
    with pytest.raises(ValueError, match=r"impact_model='square'"):
        envs.make("portfolio", data, dict(cfg, costs=dict(impact_model="square")))
    with pytest.raises(ValueError, match=r"regulatory_fees='sec'"):
        envs.make("portfolio", data, dict(cfg, costs=dict(regulatory_fees="sec")))
    # Hand-built data without a fee table must say how to proceed; "flat" and "none" need none.
    bare = data.replace(fees=None)
    with pytest.raises(ValueError, match=r"needs EnvData\.fees.*'flat'.*'none'"):
        envs.make("portfolio", bare, cfg)
    for mode in ("flat", "none"):
        envs.make("portfolio", bare, dict(cfg, costs=dict(regulatory_fees=mode)))
    # A traded date the schedule does not cover is refused with the date.
    with pytest.raises(ValueError, match=r"does not cover 1985-03-04"):
        envs.make("portfolio", data.replace(fee_gap="1985-03-04"), cfg)


def test_volume_impact_averages_exactly_adv_window_rows():
    """The cost of a trade at row t reads volume rows t-adv .. t-1: a change at row t-adv-1 (or t)
    leaves it alone, a change at row t-adv moves it."""
    close = synthetic_close(t=48, n=2)
    volume = np.full(close.shape, 1e5)
    adv, t = 4, W

    def first_trade_cost(volume):
        data = envdata_from_close(close, start=W, volume=volume)
        env, params = envs.make("portfolio", data, dict(window=W, random_start=False,
                                                        costs=dict(adv_window=adv)))
        core = env.unwrapped
        _, s = core.reset(jax.random.key(0), params)
        assert int(s.t) == t
        return float(core.step(jax.random.key(1), s, jnp.int32(envs.Regime.EQUAL_WEIGHT), params)[4]["costs"])

    base = first_trade_cost(volume)
    for row, moves in ((t - adv - 1, False), (t, False), (t - adv, True), (t - 1, True)):
        bumped = volume.copy()
        bumped[row] *= 50.0
        assert (first_trade_cost(bumped) != base) == moves, row


def test_episodes_start_at_envdata_start_not_at_the_window(tiny_data):
    """window < start: the whole-split episode still starts at row start, and random starts are
    uniform over [start, T-1-L]."""
    env, params = envs.make("portfolio", tiny_data, dict(window=2, random_start=False))
    obs, s = env.reset(jax.random.key(0), params)
    assert int(s.t) == tiny_data.start and int(s.end) == tiny_data.n_rows - 1
    np.testing.assert_array_equal(obs["window"], market.window_rows(tiny_data, tiny_data.start, 2))
    length = 40
    env, params = envs.make("portfolio", tiny_data, dict(window=2, episode_length=length))
    _, states = jax.jit(jax.vmap(env.reset, (0, None)))(jax.random.split(jax.random.key(1), 4000), params)
    starts = np.asarray(states.t)
    assert starts.min() == tiny_data.start and starts.max() == tiny_data.n_rows - 1 - length
    assert len(np.unique(starts)) == tiny_data.n_rows - length - tiny_data.start
    np.testing.assert_array_equal(np.asarray(states.end), starts + length)


def test_window_one_on_a_split_with_30_history_rows_trades_from_its_first_date(real_splits):
    """Today's bug: window=1 on a test split with 30 history rows traded 29 validation days."""
    from jaxtrade.eval.backtest import backtest
    from jaxtrade.eval.baselines import random_policy

    test = real_splits.test
    assert test.start == 30
    data = test.to_device()
    data = data.replace(**{k: getattr(data, k)[:40] for k in (
        "close", "open", "high", "low", "volume", "features", "market", "turbulence", "momentum",
        "volatility", "sharpe", "size")})                                 # 30 history + 10 traded rows
    env, params = envs.make("portfolio", data, dict(window=1, random_start=False))
    frame = backtest(random_policy(env), env, params, dates=test.dates[:40])
    assert frame.index[0] == test.traded_dates[0] == test.dates[30]
    assert len(frame) == 10
