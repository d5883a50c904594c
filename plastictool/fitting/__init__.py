"""Fitting rule parameters to measured data (``plastic fit``, spec section 13).

``fit(experiment_or_path, data, params, method="least_squares", seed=None, jobs=1,
scheduler=None, progress=None) -> FitResult``; ``write_fit(result, out)`` writes its folder.
Modules: ``data`` (DATA.csv and free parameters), ``objective`` (data rows -> conditions ->
mean dw_percent, in-process and parallel), ``methods`` (least_squares, cmaes),
``uncertainty`` (errors, correlations, AIC/BIC), ``core`` (the function and its outputs).
Importing this package loads neither NumPy's kernels nor Numba.
"""

from .core import METHODS, FitResult, fit, output_dir, write_fit
from .data import Data, FreeParam, parse_param, read_data

__all__ = ["METHODS", "Data", "FitResult", "FreeParam", "fit", "output_dir", "parse_param", "read_data", "write_fit"]
