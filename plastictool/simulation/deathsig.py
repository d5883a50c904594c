"""Processes that die with their parent (Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``).

``plastic run --jobs N`` starts a fork server and worker processes (:mod:`plastictool.simulation.parallel`).
When the main process is killed (``kill -9``, the OOM killer), nothing would stop them: the
workers would finish their conditions, hundreds of MB each, for nobody. The kernel can send a
process a signal when its parent dies; the fork server asks for SIGKILL when it is started
(importing this module, as a preload of the fork server, does that) and each worker does in its
initializer. Then the chain main process -> fork server -> workers falls together.

The request is cleared by ``fork``, and a parent may die before the child asks, so the child
then checks that its parent is still the one it had (and, for workers, that the run's main
process is alive) and exits otherwise. Elsewhere than Linux this module does nothing.
"""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def _prctl_deathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - no libc with prctl
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists, not ours
        return True
    return True


def die_with_parent(main_pid: int | None = None, parent_pid: int | None = None) -> None:
    """Ask for SIGKILL when the parent dies; exit now if it (or ``main_pid``) already has."""
    parent = os.getppid() if parent_pid is None else parent_pid
    _prctl_deathsig()
    if os.getppid() != parent or (main_pid is not None and not _alive(main_pid)):
        os._exit(1)


ENV = "PLASTIC_DEATHSIG_PARENT"  # set by the main process before it starts the fork server


def preload() -> None:
    """Run on import: a direct child of the process named in ``$PLASTIC_DEATHSIG_PARENT`` (the
    fork server, which imports this module as a preload) dies with that process."""
    want = os.environ.get(ENV)
    if want and want.isdigit() and int(want) == os.getppid():
        die_with_parent(int(want), int(want))


preload()
