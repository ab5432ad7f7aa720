"""No look-ahead, for both environments: the observation and the decision at row t read rows < t only."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from envs_testlib import perturb_rows, run_actions

from jaxtrade import envs

W = 8


@pytest.mark.parametrize("name", ["portfolio", "single"])
def test_no_lookahead(tiny_data, name):
    """Perturbing every row >= t leaves the observation at t unchanged (and changes a later one); and
    perturbing every non-price row >= t leaves the trade at t unchanged."""
    # Factor regimes at the cut rows W, W + 3 (MOMENTUM, QUALITY); the gate acts at W + 6 (the
    # turbulence of tiny_data's row W + 5 is the only one above 4 among rows W - 1 .. W + 5).
    actions = [5, 6, 7, 7, 11, 9, 5] if name == "portfolio" else [2, 0, 0, 1, 2, 0, 2]
    config = dict(window=W, random_start=False, turbulence_threshold=4.0)
    env, params = envs.make(name, tiny_data, config)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    base = run_actions(reset, step, params, actions)
    reads_prev_row = []
    for k in (0, 3, 6):
        cut = W + k
        _, pert_params = envs.make(name, perturb_rows(tiny_data, cut), config)
        pert = run_actions(reset, step, pert_params, actions)
        obs_b, obs_p = base[k][0], pert[k][0]
        assert int(base[k][1].t) == cut
        np.testing.assert_array_equal(obs_b["window"], obs_p["window"])
        np.testing.assert_array_equal(obs_b["state"], obs_p["state"])
        assert not np.array_equal(base[k + 1][0]["window"], pert[k + 1][0]["window"])   # can fail
        # The decision at `cut` (targets from factor scores, the gate) reads rows < cut only.
        _, dec_params = envs.make(name, perturb_rows(tiny_data, cut, prices=False), config)
        dec = run_actions(reset, step, dec_params, actions)
        np.testing.assert_array_equal(base[k + 1][1].holdings, dec[k + 1][1].holdings)
        # ... and does read row cut - 1 (so the check above can fail).
        _, prev_params = envs.make(name, perturb_rows(tiny_data, cut - 1, prices=False), config)
        prev = run_actions(reset, step, prev_params, actions)
        reads_prev_row.append(not np.array_equal(base[k + 1][1].holdings, prev[k + 1][1].holdings))
    assert [bool(o[4]["gate"]) for o in base[1:]] == [False] * 6 + [True]
    if name == "portfolio":     # `single` reads row t - 1 through the gate only
        assert any(reads_prev_row)
