"""plastic: a laboratory for synaptic plasticity, from the command line or from Python.

::

    import plastictool as pt

    res = pt.run("protocols/stdp_window.yaml", set={"rule.a_plus": 0.02})
    res.summary["dw"]          # NumPy array, one value per synapse and condition
    res.summary.to_pandas()    # when pandas is installed
    res.write("outputs/x")     # the files of `plastic run --out outputs/x`
    pt.read("outputs/x") == res

The names are loaded on first use (PEP 562), so ``import plastictool`` loads neither NumPy nor
Numba; :func:`run` compiles (or loads) the kernels on its first call. See docs/python.md.

- :func:`load` (``plastictool.api.load``): a path, YAML string or dict -> a validated Experiment
- :func:`run` (``plastictool.api.run``): run in memory -> :class:`Result`
- :func:`read` (``plastictool.results.result.read``): a finished run folder -> :class:`Result`
- :func:`fit` (``plastictool.fitting.fit``): a rule's parameters from measured data, as
  ``plastic fit`` -> :class:`FitResult` (``.write(folder)`` writes the fit's folder)
- :class:`Result`, :class:`Table`: a run's tables as named NumPy columns
- :class:`PlasticError` (every error below; ``exit_code`` is the command line's exit status),
  :class:`ProtocolError` (bad input, exit 2), :class:`SimulationError` (NaN or infinity, exit 3),
  :class:`OutputError` (the file system failed, exit 4)
"""

__version__ = "0.1.0"

_LAZY = {
    "load": ("api", "load"),
    "run": ("api", "run"),
    "read": ("results.result", "read"),
    "fit": ("fitting", "fit"),
    "FitResult": ("fitting", "FitResult"),
    "Result": ("results.result", "Result"),
    "Table": ("results.table", "Table"),
    "PlasticError": ("errors", "PlasticError"),
    "ProtocolError": ("errors", "ProtocolError"),
    "SimulationError": ("errors", "SimulationError"),
    "OutputError": ("errors", "OutputError"),
}

__all__ = ["load", "run", "read", "fit", "FitResult", "Result", "Table", "PlasticError", "ProtocolError", "SimulationError", "OutputError", "__version__"]


def __getattr__(name: str):
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'plastictool' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{where[0]}", __name__), where[1])
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
