"""Errors that reach the user: bad input (exit 2) and failed simulations (exit 3)."""

from __future__ import annotations

EXIT_OK, EXIT_DIFFERENT, EXIT_BAD_INPUT, EXIT_SIM_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_ENVIRONMENT = 4


class PlasticError(Exception):
    exit_code = EXIT_BAD_INPUT


class OutputError(PlasticError):
    """The environment failed: no space left, permission denied, read-only or missing file system, I/O error (exit 4)."""

    exit_code = EXIT_ENVIRONMENT


class ProtocolError(PlasticError):
    """Bad input. Carries the file, the line and the dotted field it is about."""

    def __init__(self, message: str, field: str = "", file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = self.file or "<protocol>"
        if self.line is not None:
            where += f":{self.line}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class SimulationError(PlasticError):
    """A value became NaN or infinite during a run."""

    exit_code = EXIT_SIM_FAILED

    def __init__(self, message: str, t_ms: float | None = None, variable: str = ""):
        super().__init__(message)
        self.t_ms = t_ms
        self.variable = variable


PlasticError.__doc__ = """Every error plastic reports (the Python API's base class); ``exit_code`` is the command line's exit status."""
