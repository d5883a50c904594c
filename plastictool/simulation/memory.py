"""The memory a run needs (``estimate_memory``, refused before any work by ``check_memory``:
exit 2 naming what to change) and giving the C heap back after big runs (``trim_heap``)."""

from __future__ import annotations

import os
import sys

from .. import rules as rule_registry
from ..errors import ProtocolError
from ..protocol.schema import Protocol, expected_spikes


# ---------------------------------------------------------------------------- memory
def memory_limit() -> int:
    env = os.environ.get("PLASTIC_MAX_MEMORY")
    if env:
        return int(float(env))
    return int(0.8 * _physical_memory())


_PHYS = None


def _physical_memory() -> int:
    """Bytes of physical memory, asked once per process (every condition of a sweep checks its
    estimate twice: validation and build)."""
    global _PHYS
    if _PHYS is None:
        try:
            _PHYS = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover
            _PHYS = 8 * 2**30
    return _PHYS


def estimate_memory(p: Protocol) -> dict:
    """Bytes a run needs, by item (weights, rule state, spikes, traces). Computed once per
    Protocol (a frozen object; a sweep's condition is estimated by validation, batching and
    build) and kept on it, outside its fields."""
    est = p.__dict__.get("_memory_estimate")
    if est is None:
        est = _estimate(p)
        object.__setattr__(p, "_memory_estimate", est)
    return dict(est)


def _estimate(p: Protocol) -> dict:
    n_syn = p.synapses.n_pre * p.synapses.n_post
    spec = rule_registry.spec(p.rule.kind)
    syn_state = sum(1 for s in spec.state if s.shape == "syn")
    if p.rule.values.get("pairing") == "presynaptic_centered":  # stdp keeps a trace per synapse
        syn_state += 1
    spikes = expected_spikes(p.phases, p.synapses)
    rows = p.duration / p.record.interval + 2
    cols = 1 + len(p.record.weights) + len(p.record.stats) + 16 * max(1, len(p.record.state))
    # the current weights, and a copy of the initial ones only for rules whose weight is computed
    # from their state (others draw them again from the seed when the summary is written); the
    # two uint8 present matrices of synapses.structure
    copies = 2 if spec.weight_from_state else 1
    est = {
        "weights": (copies * (4 if p.synapses.dtype == "float32" else 8) + (2 if p.synapses.structure is not None else 0)) * n_syn,
        "rule state": 8 * syn_state * n_syn + 16 * (p.synapses.n_pre + p.synapses.n_post),
        "spikes": 16 * 3 * spikes * (2 if p.record.spikes else 1),
        "traces": 8 * rows * cols,
    }
    rel = p.synapses.release
    if rel is not None:  # core.release: u, x, r, last step (and filled sites) per unit; w_initial
        per_syn = bool(rel.sites) or p.rule.expression == "presynaptic"
        units = n_syn if per_syn else p.synapses.n_pre
        est["rule state"] += 8 * (4 + bool(rel.sites)) * units + (8 * n_syn if p.rule.expression == "presynaptic" else 0)
    est["total"] = sum(est.values())
    return est


def check_memory(p: Protocol) -> None:
    est = estimate_memory(p)
    limit = memory_limit()
    if est["total"] > limit:
        parts = ", ".join(f"{k} {_gib(v)}" for k, v in est.items() if k != "total")
        big = max((k for k in est if k != "total"), key=est.get)
        fieldname = {"weights": "synapses.n_pre", "rule state": "synapses.n_pre", "spikes": "phases", "traces": "record.interval"}[big]
        raise ProtocolError(
            f"this run needs about {_gib(est['total'])} of memory ({parts}), more than the {_gib(limit)} "
            f"available (set PLASTIC_MAX_MEMORY to change the limit)",
            fieldname,
            p.file,
            None,
        )


def _gib(x: float) -> str:
    return f"{x / 2**30:.2f} GiB" if x >= 2**28 else f"{x / 2**20:.1f} MiB"


TRIM_MIN_SYNAPSES = 1 << 20  # networks this big give their freed heap back (trim_heap)
_TRIM = None


def trim_heap() -> None:
    """Give the free memory of the C heap back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). NumPy's temporaries below glibc's mmap threshold (which grows to 32 MiB as
    arrays are freed) return to the heap when freed, and stay resident beside a big weight
    matrix: W4's process holds 20 MiB less while its tables are written (460 -> 440 MiB), room
    for the writers' buffers below the peak at the end of the run."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL(None).malloc_trim
            _TRIM.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):  # not glibc
            _TRIM = False
    if _TRIM:
        _TRIM(0)


PREFAULT_MIN = 64 << 20  # bytes: a fresh array this big is faulted in by two threads before it is filled
MADV_POPULATE_WRITE = 23  # Linux 5.14 and later
_MADVISE = None


def prefault(a) -> None:
    """Fault in the pages of the fresh array ``a`` (C-contiguous, at least PREFAULT_MIN bytes)
    from two threads at once, before the caller fills it (Linux ``madvise`` with
    ``MADV_POPULATE_WRITE``: the kernel maps and zeroes the pages, as the first write to each
    would; nothing is written to the array). Why: in a virtual machine that hands freed memory
    back to its host, as this project's does, every fresh page is backed again by the host on
    first touch, and that is slow: W3's 76 MiB weight matrix took 0.11-0.18 s to touch from one
    thread after 30 s idle, 0.075 s from two (0.009 s when the memory is warm). Elsewhere
    (no such call, another system, a smaller array) nothing is done: the fill faults the pages
    in as it goes."""
    if a.nbytes < PREFAULT_MIN:
        return
    madvise = _madvise()
    if madvise is None:
        return
    import threading

    page = 4096
    start = a.__array_interface__["data"][0]
    lo, hi = -(-start // page) * page, (start + a.nbytes) // page * page
    huge = 2 << 20
    mid = min(max(lo, (lo + hi) // 2 // huge * huge), hi)  # (at a huge page's boundary: no page faulted by both)
    half = threading.Thread(target=madvise, args=(mid, hi - mid, MADV_POPULATE_WRITE), name="plastic-prefault")
    half.start()
    madvise(lo, mid - lo, MADV_POPULATE_WRITE)  # (the call releases the GIL: the halves fault in at once)
    half.join()


def _madvise():
    """Linux's ``madvise(address, length, advice)`` from the C library (0 or -1), or None."""
    global _MADVISE
    if _MADVISE is None:
        _MADVISE = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                fn = ctypes.CDLL(None, use_errno=True).madvise
                fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                fn.restype = ctypes.c_int
                _MADVISE = fn
            except (OSError, AttributeError):  # pragma: no cover
                pass
    return _MADVISE or None
