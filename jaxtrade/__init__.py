"""jaxtrade: jitted market environments and recurrent PPO in JAX."""

__version__ = "0.1.0"
