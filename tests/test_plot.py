"""`plastic plot` and `plastic run --plot`: every kind of figure, from tiny runs, with Agg.

Each figure is checked twice: what it holds (axes labels, legend entries, phase labels, the
kind of artist) through ``plastictool.plot.figure``, and the file it writes (an image of the
right size: PNG header and IHDR width/height = figure size x dpi; the same bytes every time).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from plastictool import plot  # noqa: E402

TIMESERIES = """\
name: ts
seed: 2
synapses: {n_pre: 4, n_post: 1, w_init: 0.5}
neuron: {model: lif}
phases:
  - {name: baseline, duration: 300 ms, pre: {poisson: {rate: 10 Hz}}}
  - {name: induction, duration: 500 ms, pre: {poisson: {rate: 60 Hz}}}
  - {name: washout, duration: 300 ms, pre: {poisson: {rate: 10 Hz}}, block: [NMDA]}
rule: {kind: stdp}
record: {interval: 5 ms, stats: [mean, std, min, max], state: [v, x_pre]}
"""

WINDOW = """\
name: win
seed: 1
synapses: {n_pre: 1, n_post: 1, w_init: 0.5}
neuron: {model: clamped}
stimulus:
  pairing: {pairs: 3, frequency: 1 Hz, delta_t: 10 ms}
rule: {kind: stdp}
sweep:
  stimulus.pairing.delta_t: [-20 ms, -10 ms, 10 ms, 20 ms]
"""

WINDOW_REFERENCE = """\
# a comment: where the points come from
delta_t,dw_percent,sem,label
-10,-5,1.5,Lab A
10,6,2,Lab A
20,3,,Lab B
"""

FAMILY = """\
name: fam
seed: 1
synapses: {n_pre: 1, n_post: 1, w_init: 1, w_min: null, w_max: null}
neuron: {model: clamped}
stimulus:
  pairing: {pairs: 3, frequency: 1 Hz, delta_t: 10 ms}
rule: {kind: triplet, preset: pfister2006_visual_aa_min}
sweep:
  stimulus.pairing.frequency: [1 Hz, 10 Hz, 20 Hz, 40 Hz]
  stimulus.pairing.delta_t: [-10 ms, 0 ms, 10 ms]
"""

FAMILY_REFERENCE = """\
stimulus.pairing.frequency,stimulus.pairing.delta_t,dw_percent,sem,label
1,10,-1,2,data
20,10,25,5,data
20,-10,-30,4,data
"""


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def expected_px(fig):
    w, h = fig.get_size_inches()
    return round(w * plot.DPI), round(h * plot.DPI)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny runs, made once: name -> (protocol path, output folder)."""
    from typer.testing import CliRunner

    from plastictool.cli import app

    root = tmp_path_factory.mktemp("plot")
    out = {}
    for name, text, ref in (("ts", TIMESERIES, None), ("win", WINDOW, WINDOW_REFERENCE), ("fam", FAMILY, FAMILY_REFERENCE)):
        proto = root / f"{name}.yaml"
        proto.write_text(textwrap.dedent(text))
        if ref is not None:
            (root / f"{name}.reference.csv").write_text(ref)
        folder = root / "out" / name
        r = CliRunner().invoke(app, ["run", str(proto), "--out", str(folder), "--quiet", "--jobs", "1", "--plot"])
        assert r.exit_code == 0, r.output
        out[name] = (proto, folder)
    return out


def test_run_plot_writes_plot_png_into_the_run_folder(runs):
    for name, (_, folder) in runs.items():
        png = folder / "plot.png"
        assert png.is_file(), name
        assert png_size(png)[0] == 800


def test_time_series_weights_state_raster_rate_and_phases(runs, tmp_path):
    _, folder = runs["ts"]
    fig = plot.figure(folder)
    time_axes = [ax for ax in fig.axes if ax.get_xlabel() == "time (s)" or ax.get_shared_x_axes().joined(ax, fig.axes[0])]
    labels = [ax.get_ylabel() for ax in time_axes]
    assert labels == ["weight w\n(dimensionless)", "v\n(mV)", "x_pre\n(dimensionless)", "spikes\n(neuron)", "rate (Hz)\nper neuron, 20 ms bins"]
    assert time_axes[-1].get_xlabel() == "time (s)"
    weights = time_axes[0]
    legend = [t.get_text() for t in weights.get_legend().get_texts()]
    assert legend == ["w[0,0]", "w[1,0]", "w[2,0]", "w[3,0]", "w_mean ± w_std", "w_mean", "w_min, w_max"]
    # distinct line styles and markers, not colour alone
    lines = [ln for ln in weights.get_lines() if ln.get_label().startswith("w[")]
    assert len({(str(ln.get_linestyle()), ln.get_marker()) for ln in lines}) == 4
    # phases: named on the top axes, the blocked one says so and is hatched on every time axis
    phase_texts = [t.get_text() for t in weights.texts]
    assert phase_texts == ["baseline", "induction", "washout\nblocked: NMDA"]
    for ax in time_axes:
        assert any(p.get_hatch() == "///" for p in ax.patches)
    raster = time_axes[3]
    assert [t.get_text() for t in raster.get_yticklabels()] == ["pre", "post"]
    assert "ts" in fig._suptitle.get_text()
    out = tmp_path / "ts.png"
    assert plot.plot_run(folder, out) == out
    assert png_size(out) == expected_px(fig) == (800, round((plot.HEIGHT_IN + 2 * plot.PANEL_IN) * plot.DPI))


def test_many_synapses_add_a_histogram_of_initial_and_final_weights(runs, monkeypatch):
    monkeypatch.setattr(plot, "HIST_MIN_SYNAPSES", 4)
    _, folder = runs["ts"]
    fig = plot.figure(folder)
    weights = fig.axes[0]
    (hist,) = weights.child_axes
    assert hist.get_shared_y_axes().joined(hist, weights) and len(hist.patches) == 2
    legend = [t.get_text() for t in weights.get_legend().get_texts()]
    assert legend[-2:] == ["w_initial (hist.)", "w_final (hist.,\n4 synapses)"]


def test_sweep_curve_with_reference_points(runs, tmp_path):
    _, folder = runs["win"]
    fig = plot.figure(folder)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "stimulus.pairing.delta_t (ms), delta_t = t_post - t_pre"
    assert ax.get_ylabel() == "weight change dw_percent (%)"
    model = [ln for ln in ax.get_lines() if ln.get_label() == "model"][0]
    assert list(model.get_xdata()) == [-20.0, -10.0, 10.0, 20.0]
    y = model.get_ydata()
    assert y[0] < 0 and y[1] < 0 and y[2] > 0 and y[3] > 0
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["model", "Lab A (± sem)", "Lab B"]
    assert len(ax.containers) == 2  # one errorbar group per label
    out = tmp_path / "win.png"
    plot.plot_run(folder, out)
    assert png_size(out) == expected_px(fig) == (800, 500)


def test_two_keys_family_with_reference_per_curve(runs):
    _, folder = runs["fam"]
    fig = plot.figure(folder)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "stimulus.pairing.frequency (Hz)"  # the key with more values
    curves = [ln for ln in ax.get_lines() if ln.get_label().startswith("delta_t")]
    assert [ln.get_label() for ln in curves] == ["delta_t = -10 ms", "delta_t = 0 ms", "delta_t = 10 ms"]
    assert all(list(ln.get_xdata()) == [1.0, 10.0, 20.0, 40.0] for ln in curves)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "data: delta_t = 10 ms (± sem)" in legend and "data: delta_t = -10 ms (± sem)" in legend
    # a reference group takes the colour and marker of its curve
    ref = [c for c in ax.containers if c.get_label().startswith("data: delta_t = 10 ms")][0]
    assert ref.lines[0].get_marker() == curves[2].get_marker()
    assert ref.lines[0].get_markeredgecolor() == curves[2].get_color()


def test_two_keys_with_many_values_give_a_heat_map(runs, tmp_path, monkeypatch):
    from matplotlib.collections import QuadMesh

    monkeypatch.setattr(plot, "HEATMAP_MIN", 3)
    _, folder = runs["fam"]
    fig = plot.figure(folder)
    ax, cbar = fig.axes
    assert any(isinstance(c, QuadMesh) for c in ax.collections)
    assert ax.get_ylabel().startswith("stimulus.pairing.frequency") and ax.get_xlabel().startswith("stimulus.pairing.delta_t")
    assert cbar.get_ylabel() == "weight change dw_percent (%)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-10", "0", "10"]
    assert ax.get_legend() is not None  # the reference points
    out = tmp_path / "heat.png"
    plot.plot_run(folder, out)
    assert png_size(out) == (800, 500)


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF-")])
def test_same_run_gives_the_same_bytes(runs, tmp_path, suffix, magic):
    for name in ("ts", "fam"):
        _, folder = runs[name]
        a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
        plot.plot_run(folder, a)
        plot.plot_run(folder, b)
        data = a.read_bytes()
        assert data.startswith(magic)
        assert data == b.read_bytes(), f"{name}{suffix} differs between two renderings"
        for stamp in (b"Matplotlib v", b"CreationDate", b"<dc:date"):
            assert stamp not in data


def test_plot_command_default_output_and_options(runs, cli, tmp_path):
    _, folder = runs["win"]
    (folder / "plot.png").unlink()
    r = cli("plot", folder)
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"plot: {folder / 'plot.png'}"
    assert png_size(folder / "plot.png") == (800, 500)
    r = cli("plot", folder, "-o", tmp_path / "deep" / "win.svg", "-q")
    assert r.exit_code == 0 and r.output == ""
    assert (tmp_path / "deep" / "win.svg").read_bytes().startswith(b"<?xml")


def test_bad_input_exits_2(runs, cli, tmp_path):
    r = cli("plot", tmp_path / "nowhere")
    assert r.exit_code == 2 and "is not a run folder" in r.output
    r = cli("plot", tmp_path)
    assert r.exit_code == 2 and "neither summary.csv nor traces.csv" in r.output
    _, folder = runs["win"]
    r = cli("plot", folder, "-o", tmp_path / "x.jpg")
    assert r.exit_code == 2 and "unknown image format '.jpg'" in r.output
    assert "Traceback" not in r.output


def test_bad_reference_file_names_the_file_and_line(runs, cli, tmp_path):
    proto, folder = runs["win"]
    ref = proto.with_name("win.reference.csv")
    good = ref.read_text()
    try:
        ref.write_text("# source\ndelta_tt,dw_percent\n10,5\n")
        r = cli("plot", folder, "-o", tmp_path / "x.png")
        assert r.exit_code == 2 and f"{ref}:2: unknown column 'delta_tt'" in r.output
        ref.write_text("dw_percent,sem\n5,1\n")
        r = cli("plot", folder, "-o", tmp_path / "x.png")
        assert r.exit_code == 2 and f"{ref}:1: no column for the swept key(s) stimulus.pairing.delta_t" in r.output
        ref.write_text("delta_t,dw_percent\n10,five\n")
        r = cli("plot", folder, "-o", tmp_path / "x.png")
        assert r.exit_code == 2 and f"{ref}:2: dw_percent 'five' is not a number" in r.output
    finally:
        ref.write_text(good)


def test_reference_found_from_a_relative_protocol_path(cli, write, tmp_path, monkeypatch):
    write("rel.yaml", WINDOW.replace("name: win", "name: rel"))
    write("rel.reference.csv", "stimulus.pairing.delta_t,dw_percent\n10,5\n")
    monkeypatch.chdir(tmp_path)
    r = cli("run", "rel.yaml", "--out", "o", "-q", "-j", "1")
    assert r.exit_code == 0, r.output
    fig = plot.figure(tmp_path / "o")
    assert "reference" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_missing_matplotlib_is_a_clear_error_exit_2(runs, cli, write, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    _, folder = runs["win"]
    r = cli("plot", folder, "-o", tmp_path / "x.png")
    assert r.exit_code == 2
    assert "needs matplotlib" in r.output and "pip install '.[plot]'" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.png").exists()
    # run --plot refuses before running anything
    p = write("w.yaml", WINDOW)
    r = cli("run", p, "--out", tmp_path / "o", "--plot", "-q")
    assert r.exit_code == 2 and "needs matplotlib" in r.output
    assert not (tmp_path / "o").exists()


def test_the_cli_does_not_import_matplotlib_or_numpy_at_start_up():
    code = "import sys, plastictool.cli; print(sorted(m for m in ('numpy', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_blocks_common_to_all_phases_are_named_once():
    meta = {
        "protocol": {"phases": [{"name": "a", "duration": 10.0}, {"name": "b", "duration": 5.0}]},
        "blocks": {"a": ["mTOR"], "b": ["mTOR", "NMDA"]},
    }
    run = plot.Run(Path("."), meta, "x")
    assert plot.phases_of(run) == ([("a", 0.0, 10.0, []), ("b", 10.0, 5.0, ["NMDA"])], ["mTOR"])
    one = {"protocol": {"stimulus": {"name": "phase0", "duration": 10.0}}, "blocks": {"phase0": ["NMDA"]}}
    assert plot.phases_of(plot.Run(Path("."), one, "x")) == ([], ["NMDA"])


def test_time_unit_follows_the_run_length():
    assert plot.time_unit(500.0) == ("ms", 1.0)
    assert plot.time_unit(100e3) == ("s", 1e3)
    assert plot.time_unit(3601e3) == ("min", 60e3)
    assert plot.time_unit(5 * 3600e3) == ("h", 3600e3)


def test_header_with_quoted_or_bare_brackets():
    assert plot.split_header('t_ms,"w[0,1]",w_mean,ca[0,1]\n') == ["t_ms", "w[0,1]", "w_mean", "ca[0,1]"]
    assert plot.split_header("t_ms,w[0,1],x_pre[2]") == ["t_ms", "w[0,1]", "x_pre[2]"]
