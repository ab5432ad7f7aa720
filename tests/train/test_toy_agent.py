"""The frame knows no agent by name: a toy agent defined here, registered for the test only, trains
through `loop.run` (validation, best artifacts, `latest`, the final report through `load_model`),
and the config the run saves is the user's, not what setup decided.

The toy is a softmax policy over the discrete actions with one logit vector as its params, trained by
REINFORCE with a batch-mean baseline: no network, no optimizer library, nothing of PPO's.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import struct
from jax.tree_util import Partial

from jaxtrade.agents import devices as devices_lib
from jaxtrade.agents import registry
from jaxtrade.agents.base import Agent
from jaxtrade.envs.base import ObsSpec, Policy
from jaxtrade.train import artifact, loop
from jaxtrade.train import setup as setup_lib
from jaxtrade.train.checkpoints import CheckpointError, Checkpoints


@struct.dataclass
class ToyHParams:
    lr: jax.Array = 0.5

    @classmethod
    def names(cls):
        return tuple(f.name for f in dataclasses.fields(cls))


class ToyState(struct.PyTreeNode):
    params: dict
    env_state: object
    key: jax.Array
    hparams: ToyHParams


def _toy_act(logits, deterministic, key, carry, obs):
    logits = jnp.where(obs["action_mask"], logits, -1e9) if "action_mask" in obs else logits
    a = jnp.argmax(logits) if deterministic else jax.random.categorical(key, logits)
    return a.astype(jnp.int32), carry


def _toy_init():
    return None


def toy_policy(params, deterministic=True):
    logits = jnp.asarray(params["logits"])
    return Policy(init=Partial(_toy_init), act=Partial(_toy_act, logits, deterministic))


class ToyAgent:
    name = "toy"
    diagnostics = ("pg_loss", "any_nonfinite")
    frozen = ()

    def __init__(self, config, env):
        self.env = env
        self.section = dict(config.toy)
        self.n_envs, self.n_steps = int(self.section["n_envs"]), int(self.section["n_steps"])
        self.action_spec = env.action_spec
        self.obs_spec = getattr(env, "obs_spec", None)
        self.model_config = {"kind": "logits"}
        self.hparams = ToyHParams(jnp.float32(self.section["lr"]))
        self.compiles = 0
        self._pmapped = None

    def env_steps_per_iteration(self, n_devices):
        return self.n_envs * self.n_steps * n_devices

    def hparam_names(self):
        return ToyHParams.names()

    def stack_hparams(self, members):
        return jax.tree.map(lambda *x: jnp.stack(x), *members)

    def static_key(self, config):
        return (int(config.toy.n_envs), int(config.toy.n_steps))

    def hparams_from(self, config):
        return ToyHParams(jnp.float32(config.toy.lr))

    def init(self, key, env_params, devices=None, hparams=None):
        devices = devices_lib.select_devices(None, devices)
        self.devices = list(devices)
        n = len(devices)
        keys = jax.random.split(key, n * self.n_envs + 1)
        _, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(keys[1:], env_params)
        env_state = jax.tree.map(lambda x: x.reshape((n, self.n_envs) + x.shape[1:]), env_state)
        stack = lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x))
        state = ToyState({"logits": stack(jnp.zeros(self.action_spec.n))}, env_state, stack(keys[0]),
                         jax.tree.map(stack, hparams or self.hparams))
        return devices_lib.put_sharded(state, devices)

    def init_population(self, keys, env_params, hparams, devices=None):
        raise NotImplementedError("the toy trains one member")

    def init_seeds(self, seeds, env_params, devices=None):
        raise NotImplementedError("the toy trains one member")

    def _iteration(self, state, env_params):
        self.compiles += 1
        key, run_key = jax.random.split(state.key)
        logits = state.params["logits"]

        def body(env_state, k):
            act_keys, step_keys = jnp.moveaxis(jax.random.split(k, (2, self.n_envs)), 0, 0)
            actions = jax.vmap(lambda kk: jax.random.categorical(kk, logits))(act_keys)
            _, env_state, reward, done, info = jax.vmap(self.env.step, in_axes=(0, 0, 0, None))(
                step_keys, env_state, actions, env_params)
            return env_state, (actions, reward, info["stats"])

        env_state, (actions, rewards, stats) = jax.lax.scan(body, state.env_state,
                                                            jax.random.split(run_key, self.n_steps))
        adv = rewards - jnp.mean(rewards)
        onehot = jax.nn.one_hot(actions, logits.shape[0])
        grad = jnp.mean(adv[..., None] * (onehot - jax.nn.softmax(logits)), axis=(0, 1))
        grad = jax.lax.pmean(grad, devices_lib.AXIS)
        new_logits = logits + state.hparams.lr * grad
        metrics = {k: jax.lax.psum(jnp.sum(v), devices_lib.AXIS) for k, v in stats.as_dict().items()}
        n_dev = jax.lax.psum(1, devices_lib.AXIS)
        metrics["env_steps"] = jnp.float32(self.env_steps_per_iteration(1)) * n_dev
        metrics["pg_loss"] = -jnp.mean(adv)
        metrics["any_nonfinite"] = ~jnp.all(jnp.isfinite(new_logits))
        return state.replace(params={"logits": new_logits}, env_state=env_state, key=key), metrics

    def make_iteration(self, devices=None):
        if self._pmapped is None:
            self._pmapped = jax.pmap(self._iteration, axis_name=devices_lib.AXIS, in_axes=(0, None),
                                     devices=devices_lib.pmap_devices(self.devices))
        return self._pmapped

    def make_population_iteration(self, devices=None):
        raise NotImplementedError("the toy trains one member")

    def params(self, state):
        return devices_lib.first_device(state.params)

    def opt_state(self, state):
        return None

    def with_params(self, state, params, opt_state=None):
        return state.replace(params=devices_lib.put_replicated(params, self.devices))

    def with_encoder(self, state, encoder_params):
        raise ValueError("the toy has no encoder")

    def policy(self, params, deterministic=True):
        return toy_policy(params, deterministic)

    def to_checkpoint(self, state):
        return state

    def from_checkpoint(self, state, restored):
        return restored


def _toy_section():
    return ml_collections.ConfigDict(dict(n_envs=4, n_steps=8, lr=0.5))


@pytest.fixture
def toy_registered():
    registry.register("toy", make=ToyAgent, default_config=_toy_section,
                      policy_from_spec=lambda spec, params, det=True: toy_policy(params, det),
                      action_kinds=("discrete",), lr_keys=("lr",))
    yield
    registry._REGISTRY.pop("toy")


def test_a_toy_agent_trains_through_the_loop_and_its_artifact_reloads(tmp_path, toy_registered):
    cfg = importlib.import_module("experiments.configs.smoke").get_config()
    cfg.agent.name = "toy"
    cfg.toy = _toy_section()
    cfg.train.iterations = 4
    user = json.loads(cfg.to_json_best_effort())
    s = setup_lib.build(cfg)
    agent = s.make_agent()
    assert isinstance(agent, Agent)                 # the protocol, member for member
    result = loop.run(s, agent, str(tmp_path), verbosity="quiet")
    assert result.iterations == 4 and result.stopped == "budget"
    assert len(result.val_history) == 2 and np.isfinite(result.best["composite"])
    best = os.path.join(tmp_path, "checkpoints", "best_composite")
    policy, spec = artifact.load_model(best)        # rebuilt through the registry, from the artifact alone
    assert spec.agent == "toy" and spec.model == {"kind": "logits"}
    assert spec.env["costs"]["impact_model"] in ("sqrt_adv", "none")   # what setup decided, saved beside
    assert isinstance(spec.obs_spec, ObsSpec | type(None))
    assert os.path.exists(result.report_path)
    assert "toy_agent" in open(result.report_path).read()
    # The saved config is the user's: nothing setup resolved was written into it.
    saved = json.load(open(os.path.join(tmp_path, "config.json")))
    assert {k: saved[k] for k in user} == user
    assert saved["env"]["costs"]["impact_model"] is None
    resolved = json.load(open(os.path.join(tmp_path, "resolved.json")))     # what setup decided, beside it
    assert resolved["env"] == spec.env and resolved["agent"] == {"name": "toy", "n_envs": 4,
                                                                 "n_envs_configured": 4}
    # Resume: latest restores the toy's state and the loop continues to a longer budget.
    cfg.train.iterations = 6
    cfg.train.final_report = False
    again = loop.run(setup_lib.build(cfg), ToyAgent(cfg, s.env), str(tmp_path), verbosity="quiet")
    assert again.iterations == 6 and len(again.history) == 6


def test_an_agent_that_does_not_fit_the_action_space_fails_in_one_line(toy_registered):
    cfg = importlib.import_module("experiments.configs.smoke").get_config()
    cfg.agent.name = "toy"
    cfg.toy = _toy_section()
    cfg.env.action_space = "weights"
    s = setup_lib.build(cfg)
    want = r"agent 'toy' needs discrete actions, but env 'portfolio' has ContinuousSpec.*agents for"
    want += r" continuous"
    with pytest.raises(ValueError, match=want + r" actions: \['a2c', 'ddpg', 'ppo', 'sac', 'td3'") as e:
        s.make_agent()
    assert "\n" not in str(e.value)


def test_a_latest_that_does_not_restore_stops_the_run_with_the_reason(tmp_path, toy_registered):
    """A `latest` of another model shape, or a corrupt one, is an error naming the checkpoint, the
    reason and the way out; the run neither resumes nor starts fresh, so the warm start it was given
    (init_params) is not dropped in silence. Nothing trains before the error."""
    cfg = importlib.import_module("experiments.configs.smoke").get_config()
    cfg.agent.name = "toy"
    cfg.toy = _toy_section()
    s = setup_lib.build(cfg)
    agent = s.make_agent()
    n = s.env.action_spec.n
    state = agent.init(jax.random.key(0), s.train_params, s.devices)
    warm = {"logits": jnp.arange(n, dtype=jnp.float32)}
    latest = os.path.join(tmp_path, "checkpoints", "latest")

    other = state.replace(params={"logits": jnp.zeros(state.params["logits"].shape[:-1] + (n + 1,))})
    Checkpoints(str(tmp_path)).save("latest", 3, other, {"kind": "latest", "iteration": 3})
    with pytest.raises(CheckpointError) as e:
        loop.run(s, agent, str(tmp_path), init_params=warm, verbosity="quiet")
    msg = str(e.value)
    assert latest in msg and f"saved ({len(s.devices)}, {n + 1}), expected ({len(s.devices)}, {n})" in msg
    assert "--fresh_start" in msg and "encoder_init" in msg

    shutil.rmtree(latest)
    Checkpoints(str(tmp_path)).save("latest", 3, state, {"kind": "latest", "iteration": 3})
    for root, _, files in os.walk(os.path.join(latest, "3", "state")):
        for f in files:
            with open(os.path.join(root, f), "wb") as fh:
                fh.write(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="step 3: .*--fresh_start"):
        loop.run(s, agent, str(tmp_path), init_params=warm, verbosity="quiet")
    assert agent.compiles == 0 and not os.path.exists(os.path.join(tmp_path, "metrics.jsonl"))
