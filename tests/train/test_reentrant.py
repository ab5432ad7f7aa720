"""`loop.run` is re-entrant: one agent, three date windows of equal shape, one compile of the iteration."""

import ml_collections

from experiments.configs import smoke
from jaxtrade.agents import ppo
from jaxtrade.data import load_dataset
from jaxtrade.train import loop
from jaxtrade.train import setup as setup_lib


def _windows(n_rows: int, n_val: int, k: int):
    """k (train, val) date windows of exactly n_rows and n_val trading rows, one quarter apart."""
    dates = load_dataset("sp500-20").dates
    first = int(dates.searchsorted("2009-01-02"))
    out = []
    for i in range(k):
        a = first + 63 * i
        out.append(((str(dates[a].date()), str(dates[a + n_rows - 1].date())),
                    (str(dates[a + n_rows].date()), str(dates[a + n_rows + n_val - 1].date()))))
    return out


def test_three_windows_one_agent_one_compile(tmp_path):
    base = smoke.get_config()
    base.train.iterations = 2
    base.train.final_report = False
    base.train.tensorboard = False
    agent, results, first_params = None, [], []
    for i, (train, val) in enumerate(_windows(n_rows=300, n_val=40, k=3)):
        cfg = ml_collections.ConfigDict(base.to_dict())
        cfg.data.train, cfg.data.val, cfg.data.test = train, val, None
        s = setup_lib.build(cfg)
        if agent is None:
            agent = ppo.make(cfg, s.env)
        first_params.append(float(s.train_params.data.close[s.train_params.data.start, 0]))
        results.append(loop.run(s, agent, str(tmp_path / f"w{i}"), verbosity="quiet", fresh_start=True))
    assert [r.iterations for r in results] == [2, 2, 2]
    assert len(set(first_params)) == 3                             # three different windows really ran
    assert all(r.val_history for r in results)
    assert agent.compiles == 1, f"the iteration compiled {agent.compiles} times for three equal-shape windows"
