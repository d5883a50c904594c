"""Layer 2: a validated protocol becomes plain arrays, and the kernels advance them.

- :mod:`.engine`: ``build`` (initial weights, spike events, neuron arrays, the rule's Params and
  State), ``simulate`` (chunks, recording, threads over post-neuron blocks) -> ``RunResult``.
- :mod:`.stimulus`: spike trains and pairings as sorted events; rate inputs a chunk at a time.
- :mod:`.memory`: what a run needs, refused before the work; the C heap given back after it.
- :mod:`.threads`: blocks of post neurons and the ``Stepper`` that advances them on threads.
- :mod:`.recorder`: trace samples taken from Python where the kernels do not take them.
- :mod:`.batches`: the small conditions of a worker in one kernel call.
- :mod:`.parallel`: conditions of a sweep on worker processes (``--jobs``).
- :mod:`.distributed`: the same on a Dask cluster (``--scheduler``).
- :mod:`.deathsig`: worker processes that die with their parent.

The kernels themselves (layer 3) are in :mod:`plastictool.core` and :mod:`plastictool.rules`.
"""
