"""Results: the typed values of a run and the one place that writes and reads result folders.

- :mod:`.output`: the result files (summary, traces, spikes, responses, structure, run.json)
  from the engine's ``RunResult`` values, as CSV or ``record.format: npy``.
- :mod:`.folders`: atomic result folders (written beside the target, renamed into place;
  ``--force`` replaces only a folder plastic wrote) and environment errors (exit 4).
- :mod:`.columnar`: the layout of ``record.format: npy`` tables.
- :mod:`.table`, :mod:`.result`: ``Table`` and ``Result`` of the Python API (``pt.read``).
- :mod:`.compare`: ``plastic compare`` and ``run --check``; :mod:`.merge`: ``plastic merge``.
"""
