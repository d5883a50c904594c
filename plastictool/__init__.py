"""plastic: a command-line laboratory for synaptic plasticity."""

__version__ = "0.1.0"
