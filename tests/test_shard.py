"""``plastic run --shard K/N`` and ``plastic merge``: shards hold conditions i with i % N == K-1,
the merged CSV files are byte-identical to a single --jobs 1 run, and merge refuses shards that
do not belong together. Also: --scheduler's input checks (no Dask needed)."""

from __future__ import annotations

import json
import sys

from test_batch import PAIR, poisson

FILES = ("summary.csv", "traces.csv", "spikes.csv")
VALUES = [0.004, 0.008, 0.012, 0.016, 0.02, 0.024, 0.028]


def same_files(a, b, files=FILES):
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_merged_shards_equal_a_single_run(cli, write, tmp_path):
    p = write("p.yaml", poisson(VALUES))
    assert cli("run", p, "--out", tmp_path / "single", "--jobs", "1", "--quiet").exit_code == 0
    for k in (1, 2, 3):
        r = cli("run", p, "--shard", f"{k}/3", "--out", tmp_path / "shards" / str(k), "--jobs", "1", "--json")
        assert r.exit_code == 0, r.output
        run = json.loads(r.stdout)["runs"][0]
        assert run["shard"] == f"{k}/3" and run["total_conditions"] == 7
        meta = json.loads((tmp_path / "shards" / str(k) / "run.json").read_text())
        want = [i for i in range(7) if i % 3 == k - 1]
        assert meta["shard"]["index"] == k and meta["shard"]["count"] == 3 and meta["shard"]["total_conditions"] == 7
        assert meta["shard"]["conditions"] == want
        assert len(meta["sweep"]["conditions"]) == 7  # the whole sweep, for the merge's checks
        # traces and spikes carry the global condition index
        cond = {line.rsplit(",", 1)[1] for line in (tmp_path / "shards" / str(k) / "traces.csv").read_text().splitlines()[1:]}
        assert cond == {str(i) for i in want}
    # any order of the folders
    shards = [tmp_path / "shards" / k for k in ("3", "1", "2")]
    r = cli("merge", *shards, "--out", tmp_path / "merged")
    assert r.exit_code == 0, r.output
    assert "merged 3 shards, 7 conditions" in r.stdout
    same_files(tmp_path / "merged", tmp_path / "single")
    assert sorted(x.name for x in (tmp_path / "merged").iterdir()) == ["run.json", "spikes.csv", "summary.csv", "traces.csv"]
    single = json.loads((tmp_path / "single" / "run.json").read_text())
    merged = json.loads((tmp_path / "merged" / "run.json").read_text())
    assert merged["counts"] == single["counts"]
    assert merged["resolved_sha256"] == single["resolved_sha256"] and merged["sweep"] == single["sweep"]
    assert "shard" not in merged and [s["shard"] for s in merged["merged"]["shards"]] == ["1/3", "2/3", "3/3"]
    # the merged folder compares equal to the single run
    assert cli("compare", tmp_path / "merged", tmp_path / "single", "--quiet").exit_code == 0


def test_more_shards_than_conditions_and_one_condition(cli, write, tmp_path):
    p = write("p.yaml", poisson([0.01, 0.02]))
    assert cli("run", p, "--out", tmp_path / "single", "--jobs", "1", "--quiet").exit_code == 0
    for k in (1, 2, 3):
        assert cli("run", p, "--shard", f"{k}/3", "--out", tmp_path / "s" / str(k), "--quiet").exit_code == 0
    assert [x.name for x in (tmp_path / "s" / "3").iterdir()] == ["run.json"]  # an empty shard
    assert cli("merge", *(tmp_path / "s").iterdir(), "--out", tmp_path / "m", "--quiet").exit_code == 0
    same_files(tmp_path / "m", tmp_path / "single")
    # a protocol without a sweep: shard 1 holds its one condition
    one = write("one.yaml", PAIR)
    assert cli("run", one, "--out", tmp_path / "one", "--quiet").exit_code == 0
    for k in (1, 2):
        assert cli("run", one, "--shard", f"{k}/2", "--out", tmp_path / "o" / str(k), "--quiet").exit_code == 0
    assert cli("merge", tmp_path / "o" / "1", tmp_path / "o" / "2", "--out", tmp_path / "om", "--quiet").exit_code == 0
    same_files(tmp_path / "om", tmp_path / "one")


def test_merge_refuses_shards_that_do_not_belong_together(cli, write, tmp_path):
    p = write("p.yaml", poisson(VALUES[:4]))
    s = tmp_path / "s"
    for k in (1, 2):
        assert cli("run", p, "--shard", f"{k}/2", "--out", s / str(k), "--quiet").exit_code == 0
    assert cli("run", p, "--shard", "2/2", "--seed", "5", "--out", s / "seed5", "--quiet").exit_code == 0
    assert cli("run", p, "--shard", "2/2", "--set", "rule.a_minus=0.02", "--out", s / "set", "--quiet").exit_code == 0
    assert cli("run", p, "--shard", "2/3", "--out", s / "of3", "--quiet").exit_code == 0
    assert cli("run", p, "--out", tmp_path / "plain", "--quiet").exit_code == 0
    out = tmp_path / "m"
    cases = [
        ((s / "1", s / "seed5"), "seed differs"),
        ((s / "1", s / "set"), "resolved protocol"),
        ((s / "1", s / "of3"), "shard count 2 and 3"),
        ((s / "1",), "missing shard 2/2"),
        ((s / "1", s / "2", s / "2"), "shard 2/2 is given twice"),
        ((s / "1", tmp_path / "plain"), "is not a shard"),
        ((s / "1", tmp_path / "nothing"), "is not a folder"),
    ]
    for folders, message in cases:
        r = cli("merge", *folders, "--out", out)
        assert r.exit_code == 2, (folders, r.output)
        assert message in r.stderr, (message, r.stderr)
        assert not out.exists()
    # a truncated shard file
    traces = s / "2" / "traces.csv"
    keep = traces.read_bytes()
    traces.write_bytes(b"\n".join(keep.split(b"\n")[:-3]) + b"\n")
    r = cli("merge", s / "1", s / "2", "--out", out)
    assert r.exit_code == 2 and "fewer rows" in r.stderr
    assert not out.exists() and not list(tmp_path.glob(".m.*"))
    traces.write_bytes(keep)
    assert cli("merge", s / "1", s / "2", "--out", out, "--quiet").exit_code == 0
    r = cli("merge", s / "1", s / "2", "--out", out)
    assert r.exit_code == 2 and "exists" in r.stderr
    assert cli("merge", s / "1", s / "2", "--out", out, "--force", "--quiet").exit_code == 0
    r = cli("merge", s / "1", s / "2", "--out", s / "1", "--force")
    assert r.exit_code == 2 and "is one of the shards" in r.stderr


def test_bad_shard_and_scheduler_options_exit_2(cli, write, tmp_path):
    p = write("p.yaml", PAIR)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0"):
        r = cli("run", p, "--shard", bad, "--out", tmp_path / "o")
        assert r.exit_code == 2 and "--shard" in r.stderr, bad
    r = cli("run", p, "--scheduler", "nonsense", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "tcp://HOST:PORT" in r.stderr
    assert not (tmp_path / "o").exists()


def test_scheduler_without_dask_says_what_to_install(cli, write, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    r = cli("run", write("p.yaml", PAIR), "--scheduler", "local", "--out", tmp_path / "o")
    assert r.exit_code == 2
    assert "pip install '.[dask]'" in r.stderr
    assert not (tmp_path / "o").exists()
