"""flax.linen networks: encoders, recurrent cores, heads, the `ActorCritic` that joins them, and
`make_model(model_config, action_spec)` that builds one from a config and a spec."""

from jaxtrade.models.actor_critic import ActorCritic
from jaxtrade.models.cores import CoreStep, ScannedCore, initialize_core_carry
from jaxtrade.models.distributions import Categorical, DiagGaussian
from jaxtrade.models.encoders import CLSTMEncoder, CNNLSTMEncoder, MLPEncoder, flatten_obs
from jaxtrade.models.factory import (
    action_head,
    default_model_config,
    encoder_config,
    make_encoder,
    make_model,
    model_config_dict,
)
from jaxtrade.models.heads import PolicyHead, ValueHead
from jaxtrade.models.q_network import QNetwork, make_q_network, mask_q

__all__ = ["ActorCritic", "CLSTMEncoder", "CNNLSTMEncoder", "Categorical", "CoreStep", "DiagGaussian",
           "MLPEncoder", "PolicyHead", "QNetwork", "ScannedCore", "ValueHead", "action_head",
           "default_model_config", "encoder_config", "flatten_obs", "initialize_core_carry", "make_encoder",
           "make_model", "make_q_network", "mask_q", "model_config_dict"]
