"""Layer 1: a YAML protocol becomes a validated, typed protocol (units resolved once).

- :mod:`.yamlsrc`: safe YAML loading that keeps the line of every value (for errors that name
  the file, the line and the field).
- :mod:`.schema`: validation into frozen dataclasses (``Protocol``, ``Experiment`` with its sweep
  ``conditions``), presets, ``--set`` overrides.
- :mod:`.units`: quantities with units, resolved to ms, Hz and mV.
- :mod:`.inits`: initial values of per-synapse quantities (``w_init`` and the like).
- :mod:`.docs`: ``plastic rules`` and ``plastic schema`` from the same tables that validate.

Nothing here imports NumPy's kernels or Numba: ``plastic validate`` stays fast.
"""
