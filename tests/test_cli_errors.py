"""Config overrides on the command line (experiments/common.py): a misspelled key or a value of the
wrong type is one line on stderr and exit status 2; split dates take START,END; every load_csv option
is a key of data.csv_options."""

import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from ml_collections.config_flags import config_flags as cf

from experiments import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = "experiments/configs/smoke.py"


def _train(*overrides):
    cmd = [sys.executable, "-m", "experiments.train", f"--config={SMOKE}", "--workdir=/nonexistent/run",
           *overrides]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _parse(*overrides, config=SMOKE):
    """The config that ml_collections builds from the command line once common has checked it."""
    argv = common.checked_argv(["prog", f"--config={config}", *overrides], "config", None,
                               cf.ConfigFileFlagParser(name="config"))
    fv = flags.FlagValues()
    cf.DEFINE_config_file("config", None, "", flag_values=fv, sys_argv=argv)
    fv(argv)
    return fv.config


def test_misspelled_key_is_one_line_naming_the_closest_key():
    out = _train("--config.ppo.critc_lr=1e-3")
    assert out.returncode == 2
    assert out.stderr.splitlines() == ["error: unknown config key ppo.critc_lr (did you mean ppo.critic_lr?)"]


def test_value_of_the_wrong_type_is_one_line_naming_the_key_and_type(monkeypatch, capsys):
    # In process (a subprocess costs seconds of imports): the same one line and exit 2 as above.
    monkeypatch.setattr(sys, "argv", ["prog", f"--config={SMOKE}", "--config.ppo.critic_lr=abc"])
    with pytest.raises(SystemExit) as e:
        common.define_config_file("config", None, "", flag_values=flags.FlagValues())
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: config key ppo.critic_lr takes a float (e.g. 3e-4), got 'abc'"]


@pytest.mark.parametrize("override, message", [
    ("--config.env.costs.spred_bps=1",
     "unknown config key env.costs.spred_bps (did you mean env.costs.spread_bps?)"),
    ("--config.ppoo.critic_lr=1", "unknown config key ppoo.critic_lr (did you mean ppo.critic_lr?)"),
    ("--config.train.seeds=1.5", "config key train.seeds takes an integer, got '1.5'"),
    ("--config.data.train=2018-01-01", "config key data.train takes START,END dates"),
    ("--config.data.val=2018-01-01,2019-13-01", "config key data.val takes START,END dates"),
])
def test_each_mistake_is_named(override, message):
    with pytest.raises(ValueError) as e:
        _parse(override)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


@pytest.mark.parametrize("args", [
    ["--config.data.train=2018-01-01,2019-12-31"],
    ["--config.data.train", "2018-01-01,2019-12-31"],
    ["--config.data.train=2018-01-01", "--config.data.train=2019-12-31"],     # repeated flags
    ["--config.data.train=('2018-01-01', '2019-12-31')"],                      # the Python form
])
def test_split_dates_take_start_comma_end(args):
    cfg = _parse(*args, "--config.data.val=,2020-06-30", "--config.data.test=2021-01-01,")
    assert cfg.data.train == ("2018-01-01", "2019-12-31")
    assert cfg.data.val == (None, "2020-06-30") and cfg.data.test == ("2021-01-01", None)


def test_csv_options_from_the_command_line_reach_load_csv(tmp_path):
    from jaxtrade.train.config import CSV_OPTION_TYPES
    from jaxtrade.train.setup import load_market_data

    path = tmp_path / "prices.csv"                  # days <= 12 only: D/M or M/D is for the user to say
    rows = [f"{d:02d}/{m:02d}/2020,{100 + d + m},{50 + d}\n" for m in range(1, 6) for d in range(1, 13)]
    path.write_text("date,AAA,BBB\n" + "".join(rows))
    cfg = _parse(f"--config.data.csv_path={path}", "--config.data.csv_options.date_format=%d/%m/%Y",
                 "--config.data.csv_options.symbols=BBB,AAA", "--config.data.csv_options.max_gap=3")
    assert set(CSV_OPTION_TYPES) <= set(cfg.data.csv_options)
    assert cfg.data.csv_options.symbols == ("BBB", "AAA")
    md = load_market_data(cfg.data)
    assert str(md.dates[1])[:10] == "2020-01-02" and str(md.dates[-1])[:10] == "2020-05-12"
    assert list(md.symbols) == ["BBB", "AAA"]
    np.testing.assert_allclose(np.asarray(md.close)[0], [51.0, 102.0])


def test_define_config_file_checks_before_ml_collections_applies_overrides(monkeypatch, capsys):
    # Without --config, ml_collections applies the overrides while the flag is being defined.
    monkeypatch.setattr(sys, "argv", ["prog", "--config.ppo.critc_lr=1"])
    with pytest.raises(SystemExit) as e:
        common.define_config_file("config", SMOKE, "", flag_values=flags.FlagValues())
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: unknown config key ppo.critc_lr (did you mean ppo.critic_lr?)"]
