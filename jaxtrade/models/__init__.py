"""flax.linen networks: encoders, recurrent cores, heads, and the `ActorCritic` that joins them."""

from jaxtrade.models.actor_critic import ActorCritic
from jaxtrade.models.cores import CoreStep, ScannedCore, initialize_core_carry
from jaxtrade.models.distributions import Categorical, DiagGaussian
from jaxtrade.models.encoders import CLSTMEncoder, MLPEncoder
from jaxtrade.models.heads import PolicyHead, ValueHead

__all__ = ["ActorCritic", "CLSTMEncoder", "Categorical", "CoreStep", "DiagGaussian", "MLPEncoder",
           "PolicyHead", "ScannedCore", "ValueHead", "initialize_core_carry"]
