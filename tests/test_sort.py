"""The radix sort of 32-bit event keys (core/sort.py) against NumPy's sort, its slow twin, and
the events of big inputs: sorted by step, then neuron, as one int64 sort gives them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastictool.core.sort import radix_sort_u32
from plastictool.simulation.stimulus import sort_events


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=300), st.integers(0, 2**31))
def test_radix_sort_equals_numpy_sort(values, seed):
    keys = np.array(values, dtype=np.uint32)
    # many duplicates and keys that differ only in one digit, too
    rng = np.random.default_rng(seed)
    keys = np.concatenate([keys, rng.integers(0, 4, 50).astype(np.uint32) << np.uint32(16), rng.integers(0, 4, 50).astype(np.uint32)])
    rng.shuffle(keys)
    got = keys.copy()
    radix_sort_u32(got, np.empty_like(got))
    np.testing.assert_array_equal(got, np.sort(keys))


@pytest.mark.parametrize("n", [0, 1, 2])
def test_radix_sort_of_tiny_arrays(n):
    keys = np.array([2**32 - 1, 0][:n], dtype=np.uint32)
    radix_sort_u32(keys, np.empty_like(keys))
    np.testing.assert_array_equal(keys, np.sort(np.array([2**32 - 1, 0][:n], dtype=np.uint32)))


@pytest.mark.parametrize("n_neurons, n_steps", [(1000, 1_000_000), (3, 100_000), (70_000, 60_000)])
def test_big_inputs_sorted_by_step_then_neuron(n_neurons, n_steps):
    """Above 65,536 events whose keys fit in 32 bits the radix sort runs (the last case's keys do
    not: int64 sort); any way, the events come out as NumPy's lexsort orders them."""
    rng = np.random.default_rng(n_neurons)
    n = 200_000
    chunks = [rng.integers(0, n_steps, n // 2), rng.integers(0, n_steps, n - n // 2)]
    idx = [rng.integers(0, n_neurons, c.size) for c in chunks]
    order = np.lexsort((np.concatenate(idx), np.concatenate(chunks)))
    want_s, want_i = np.concatenate(chunks)[order], np.concatenate(idx)[order]
    steps, neurons = sort_events([c.copy() for c in chunks], [i.copy() for i in idx], n_neurons)
    np.testing.assert_array_equal(steps, want_s)
    np.testing.assert_array_equal(neurons, want_i)
    assert steps.dtype == neurons.dtype == np.int64
