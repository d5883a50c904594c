"""``plastic run --scheduler``: sweep conditions as tasks on a Dask cluster (loopback only).

Byte-identical files to --jobs 1, a worker killed mid-run loses nothing, failing conditions are
all reported with their values (exit 3, no folder), shards run on the cluster merge into a
single run's files. The tests start real clusters of two worker processes (marked ``slow``:
they run by default and in CI; ``-m 'not slow'`` skips them)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("distributed")

from test_batch import poisson  # noqa: E402

pytestmark = pytest.mark.slow

FILES = ("summary.csv", "traces.csv", "spikes.csv")
# stochastic (Poisson trains, random initial weights): each condition's seed matters
VALUES = [0.002 * k for k in range(1, 11)]

BLOWUP = """\
name: blowup
seed: 1
dt: 1 ms
synapses: {n_pre: 2, n_post: 1, w_init: 0.1, w_min: null, w_max: null}
neuron: {model: rate, activation: linear}
stimulus: {duration: 1 s, pre: {gaussian: {mean: [1, 1], cov: [[1, 0], [0, 1]]}}}
rule: {kind: hebb, eta: 0.1 /s, decay: 0 /s}
record: {interval: 100 ms}
sweep: {rule.eta: [0.1, 1.0e+5, 0.2, 0.3, 2.0e+5, 0.4]}
"""


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each, scheduler and workers on 127.0.0.1."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0") as lc:
        with Client(lc) as client:
            client.wait_for_workers(2, timeout=60)
            yield client


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The --jobs 1 reference run of the sweep."""
    from typer.testing import CliRunner

    from plastictool.cli import app

    d = tmp_path_factory.mktemp("single")
    p = d / "sweep.yaml"
    p.write_text(poisson(VALUES))
    r = CliRunner().invoke(app, ["run", str(p), "--out", str(d / "out"), "--jobs", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    return p, d / "out"


def same_files(a, b):
    for f in FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_cluster_results_are_byte_identical_to_jobs_1(cli, cluster, single, tmp_path):
    p, ref = single
    workers = cluster.scheduler_info()["workers"]
    assert len(workers) == 2 and all(a.startswith("tcp://127.0.0.1:") for a in workers)
    r = cli("run", p, "--scheduler", cluster.scheduler.address, "--out", tmp_path / "d", "--json")
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)["runs"][0]
    assert run["workers"] == 2 and run["conditions"] == 10
    same_files(tmp_path / "d", ref)
    assert json.loads((tmp_path / "d" / "run.json").read_text())["counts"] == json.loads((ref / "run.json").read_text())["counts"]


def test_scheduler_local_starts_a_loopback_cluster(cli, single, tmp_path):
    p, ref = single
    r = cli("run", p, "--scheduler", "local", "--jobs", "2", "--out", tmp_path / "d")
    assert r.exit_code == 0, r.output
    assert "Dask dashboard: http://127.0.0.1:" in r.stderr
    same_files(tmp_path / "d", ref)
    r = cli("run", p, "--scheduler", "local", "--jobs", "2", "--out", tmp_path / "q", "--quiet")
    assert r.exit_code == 0 and r.output == ""  # --quiet: no dashboard line either


def test_failing_conditions_are_all_reported_with_their_values(cli, cluster, write, tmp_path):
    p = write("blowup.yaml", BLOWUP)
    r = cli("run", p, "--scheduler", cluster.scheduler.address, "--out", tmp_path / "e")
    assert r.exit_code == 3, r.output
    err = r.stderr
    assert "2 of 6 sweep conditions failed; the other 4 finished" in err
    assert "sweep condition 1 (rule.eta = 100000.0): w[0,0] became" in err
    assert "sweep condition 4 (rule.eta = 200000.0): w[0,0] became" in err
    assert err.index("sweep condition 1 (") < err.index("sweep condition 4 (")  # condition order
    assert not (tmp_path / "e").exists() and not list(tmp_path.glob(".e*"))  # all or nothing


def test_shards_on_the_cluster_merge_into_a_single_run(cli, cluster, single, tmp_path):
    p, ref = single
    assert cli("run", p, "--shard", "1/2", "--scheduler", cluster.scheduler.address, "--out", tmp_path / "s1", "--quiet").exit_code == 0
    assert cli("run", p, "--shard", "2/2", "--jobs", "1", "--out", tmp_path / "s2", "--quiet").exit_code == 0
    r = cli("merge", tmp_path / "s1", tmp_path / "s2", "--out", tmp_path / "m")
    assert r.exit_code == 0, r.output
    same_files(tmp_path / "m", ref)


def test_a_killed_worker_loses_no_condition(cluster, single, tmp_path):
    """The first task to start kills its worker process (once: a marker file); the scheduler gives
    that worker's tasks to the other worker (and the nanny restarts the dead one)."""
    from plastictool import api
    from plastictool.simulation import distributed
    from plastictool.results.output import write_outputs

    p, ref = single
    marker = str(tmp_path / "killed")

    def kill_once(conditions):  # a closure: cloudpickle sends it by value
        import os

        from plastictool.simulation.distributed import run_chunk

        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return run_chunk(conditions)
        os.close(fd)
        os._exit(1)

    exp = api.validate_file(p)
    seen = []
    results = distributed.run_conditions(exp.conditions, cluster, lambda label, done, total: seen.append(done), runner=kill_once)
    assert (tmp_path / "killed").exists()  # a worker did die
    assert [r.index for r in results] == list(range(10)) and seen[-1] == 10
    write_outputs(tmp_path / "d", exp, results, 0.0)
    same_files(tmp_path / "d", ref)
