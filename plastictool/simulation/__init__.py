"""Layer 2: a validated protocol becomes plain arrays, and the kernels advance them.

- :mod:`.engine`: ``build`` (initial weights, spike events, neuron arrays, the rule's Params and
  State), ``simulate`` (chunks, recording, threads over post-neuron blocks) -> ``RunResult``.
- :mod:`.parallel`: conditions of a sweep on worker processes (``--jobs``).
- :mod:`.distributed`: the same on a Dask cluster (``--scheduler``).
- :mod:`.deathsig`: worker processes that die with their parent.

The kernels themselves (layer 3) are in :mod:`plastictool.core` and :mod:`plastictool.rules`.
"""
