"""Report figures measured after rendering (matplotlib's bounding boxes): texts inside the figure and not
overlapping, per-layer charts in stages past 40 layers with the full table kept, an outlier bar cut with its
total written, all-zero heatmaps on a 0..1 % scale, legends that fit, point labels placed apart, the
estimated-vs-measured energy plot in the report, untrained models out of the accuracy plots."""

from __future__ import annotations

import copy
import io
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from real_run import gpu_like, real_run
from weights import relabelled

from bench.figure_layout import figure, finish, fit_legend, freeze_layout, layout_problems
from bench.palette import DPI, ModelStyle, model_styles
from bench.report import plots
from bench.report import tables as tb
from bench.report.content import build_content
from bench.report.declared import declarations
from bench.results import load_run

STYLE = ModelStyle("#0072B2", "o", "-")
STEM_MACS = 118e6  # an ImageNet 7x7/2 stem on analog pixels, counted once per sample


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return load_run(relabelled(real_run(tmp_path_factory), tmp_path_factory.mktemp("trained") / "run", "snnbench"))


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions render, kept for inspection (rendering itself is unchanged)."""
    figures = []
    render = plots.finish

    def keep(fig):
        figures.append(fig)
        return render(fig)

    monkeypatch.setattr(plots, "finish", keep)
    return figures


def deep_record(blocks=(3, 4, 6, 3), T=4, rate=0.1, stem_macs=STEM_MACS, label="DANet-A-50"):
    """A record of a ResNet-50-like net named like ours (stem, stages.<s>.<b>.body.<k>, head): one firing row per
    neuron layer (1 + 3 per block), one ops row per conv (1 + 3 per block) and the classifier."""
    firing = [{"name": "stem.1", "rate_per_t": [rate] * T, "n_neurons": 1000.0, "analog": False}]
    ops = [{"name": "stem.0.0", "acs": 0.0, "macs": stem_macs}]
    for s, n in enumerate(blocks):
        for b in range(n):
            for k in (1, 3, 5):
                firing.append({"name": f"stages.{s}.{b}.body.{k}", "rate_per_t": [rate * (1 + s)] * T,
                               "n_neurons": 100.0 * (k + 1), "analog": False})
            for k in (0, 2, 4):
                ops.append({"name": f"stages.{s}.{b}.body.{k}.0", "acs": 1e6 * (1 + 0.1 * k), "macs": 0.0})
    ops.append({"name": "head.fc", "acs": 2e5, "macs": 0.0})
    return {"case_id": f"{label}|T={T}|cpu|bs=1", "model": {"label": label, "name": "danet_a50", "untrained": False,
                                                            "checkpoint": "x.pth", "checkpoint_format": "snnbench"},
            "T": T, "device": "cpu", "batch_size": 1, "status": "ok",
            "metrics": {"firing": {"layers": firing}, "ops": {"layers": ops}}}


def test_a_figure_is_drawn_once_and_saved_as_savefig_would(monkeypatch):
    """Sizing the legend draws nothing and finish() draws once: the PNG it encodes from the measured pixels is the
    image savefig gives of the same figure at palette.DPI."""
    def chart():
        fig, ax = figure(4.0, 3.0)
        ax.plot([1, 2, 3], [3, 1, 2], label="a line with a long name")
        ax.plot([1, 2, 3], [1, 2, 3], label="another")
        ax.set_title("a title")
        fit_legend(ax, 2)
        return fig

    reference = chart()
    buf = io.BytesIO()
    reference.savefig(buf, format="png", dpi=DPI)
    plt.close(reference)
    draws = []
    draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(self) or draw(self, renderer))
    png, width, problems = finish(chart())
    assert len(draws) == 1 and problems == []
    pixels, expected = plt.imread(io.BytesIO(png)), plt.imread(io.BytesIO(buf.getvalue()))
    assert pixels.shape == expected.shape and pixels.shape[1] == width == 4 * DPI
    assert np.array_equal(pixels, expected)


def test_layout_checker_sees_clipped_and_overlapping_texts():
    """The checker itself can fail: a title pushed out of the figure and two labels on one spot are reported."""
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_title("a title far too long to fit in a figure three inches wide, clipped at both ends")
    ax.annotate("T=4", (0.5, 0.5))
    ax.annotate("T=4", (0.5, 0.5))
    problems = layout_problems(fig)
    plt.close(fig)
    assert any("reaches outside the figure" in p and "a title" in p for p in problems)
    assert any("label 'T=4' overlaps axes 0 label 'T=4'" in p for p in problems)


def test_layout_checker_sees_a_figure_legend_over_the_plot():
    """A figure legend drawn over the axes' plot area is reported; the same legend below it (fit_legend) is not."""
    fig, ax = figure(4.0, 3.0)
    ax.plot([1, 2, 3], [3, 1, 2], label="a line")
    freeze_layout(fig)  # axes placed first: the layout keeps room for any figure legend it sees
    fig.legend(loc="center")
    assert "figure legend box overlaps the plot of axes 0" in layout_problems(fig)
    plt.close(fig)
    fig, ax = figure(4.0, 3.0)
    ax.plot([1, 2, 3], [3, 1, 2], label="a line")
    fit_legend(ax, 1)
    assert layout_problems(fig) == []
    plt.close(fig)


def test_every_figure_of_a_real_report_is_laid_out_cleanly(trained, tmp_path):
    merged = [trained, load_run(gpu_like(trained.path, tmp_path / "gpu"))]
    content = build_content(merged)
    # Newer energy records price hardware profiles: the report then also plots energy against firing rate.
    priced = any(((r.get("metrics") or {}).get("energy") or {}).get("hardware") for r in trained.records)
    assert [f.name for f in content.figures] == ["accuracy_vs_T", "accuracy_vs_energy", "firing_tiny",
                                                 "firing_sew_w_16", "ops_tiny", "ops_sew_w_16",
                                                 "throughput_per_device"] + ["energy_vs_rate"] * priced
    assert {f.name: f.problems for f in content.figures} == {f.name: [] for f in content.figures}


def test_deep_nets_are_charted_in_stages_with_every_layer_in_the_table(drawn):
    record = deep_record()
    heat = plots.firing_heatmap("DANet-A-50", record, STYLE)
    ops = plots.ops_per_layer("DANet-A-50", record, STYLE)
    assert heat.problems == [] and ops.problems == []
    heat_fig, ops_fig = drawn
    stages = ["stem (1)", "stages.0 (9)", "stages.1 (12)", "stages.2 (18)", "stages.3 (9)"]
    assert [t.get_text() for t in heat_fig.axes[0].get_yticklabels()] == stages
    assert [t.get_text() for t in ops_fig.axes[0].get_yticklabels()] == [
        "stem (1)", "stages.0 (9)", "stages.1 (12)", "stages.2 (18)", "stages.3 (9)", "head (1)"]
    assert len(heat.details) == 49 and len(ops.details) == 50  # every layer, one click away
    assert list(heat.details.columns) == ["layer", "analog", "t=1 (%)", "t=2 (%)", "t=3 (%)", "t=4 (%)"]
    # stage rate = neuron-weighted mean of its layers: all of stage 1 fire at 2 x 0.1 = 20 %.
    assert heat_fig.axes[0].images[0].get_array()[2].tolist() == pytest.approx([20.0] * 4)
    assert "49 layers in 5 stages" in heat.caption


def test_an_imagenet_stem_does_not_flatten_the_other_bars(drawn):
    """The stem (118 M MACs) is > 8 x the median stage and > 2 x the next: the axis ends at 1.3 x the next
    largest bar (stage 2: 6 blocks x (1.0 + 1.2 + 1.4) M ACs = 21.6 M) and the stem's total is written there."""
    ops = plots.ops_per_layer("DANet-A-50", deep_record(), STYLE)
    (fig,) = drawn
    ax = fig.axes[0]
    assert ax.get_xlim()[1] == pytest.approx(1.3 * 21.6)  # Mops
    assert [t.get_text() for t in ax.texts] == ["118 M ▶"]
    assert "cut at its end" in ops.caption and ops.problems == []
    # A chart without an outlier keeps its full axis.
    plain = deep_record(stem_macs=3e6)
    plots.ops_per_layer("flat", plain, STYLE)
    assert list(drawn[1].axes[0].texts) == [] and drawn[1].axes[0].get_xlim()[1] >= 21.6


def dsr_record() -> dict:
    """The untrained DSR PreAct-ResNet-18 w/16 of suites/regression_counts.toml at T=4: its ops layers (ACs, MACs
    rounded), whose long tick labels ("blocks.2.shortcut.0") push the plot right of the figure's centre."""
    ops = [{"name": "stem", "acs": 0.0, "macs": 36864.0}]
    for b, (conv1, conv2, bn) in enumerate([(44888, 38692, 0), (38998, 37274, 4096), (19596, 33298, 4096),
                                            (31842, 33418, 2048), (16925, 27098, 2048), (28500, 26620, 1024),
                                            (13934, 17404, 1024), (18252, 17644, 512)]):
        ops += [{"name": f"blocks.{b}.bn1", "acs": 0.0, "macs": float(bn)},
                {"name": f"blocks.{b}.conv1", "acs": float(conv1), "macs": 0.0},
                {"name": f"blocks.{b}.conv2", "acs": float(conv2), "macs": 0.0}]
        if b in (2, 4, 6):
            ops.append({"name": f"blocks.{b}.shortcut.0", "acs": 2400.0, "macs": 0.0})
    ops += [{"name": "bn", "acs": 0.0, "macs": 512.0}, {"name": "pool", "acs": 142.5, "macs": 0.0},
            {"name": "fc", "acs": 400.3, "macs": 0.0}]
    return {"case_id": "DSR PreAct-ResNet-18 w/16|T=4|cpu|bs=32", "T": 4, "device": "cpu", "batch_size": 32,
            "status": "ok", "model": {"label": "DSR PreAct-ResNet-18 w/16", "name": "dsr_preact_resnet18",
                                      "untrained": True, "checkpoint": None},
            "metrics": {"ops": {"layers": ops}}}


def test_a_title_wider_than_the_figure_allows_is_rewrapped_to_fit(drawn):
    """The ops chart of the DSR net: its one-line title (72 characters, under the 76 a 6.4-inch title is wrapped
    at) is centred on a plot pushed right by its tick labels and ran past the figure's right edge. The layout
    wraps it onto two lines centred on the plot, the same words; a title that fits keeps its one line."""
    title = "Operations per layer: DSR PreAct-ResNet-18 w/16 (T=4) (untrained weights)"
    ops = plots.ops_per_layer("DSR PreAct-ResNet-18 w/16", dsr_record(), STYLE)
    assert ops.name == "ops_dsr_preact_resnet_18_w_16" and ops.problems == []
    (fig,) = drawn
    shown = fig.axes[0].get_title()
    assert shown.count("\n") == 1 and shown.split() == title.split()
    fits = plots.ops_per_layer("DANet-A-50", deep_record(), STYLE)  # a title that fits its figure
    assert fits.problems == [] and "\n" not in drawn[1].axes[0].get_title()


def test_the_layout_wraps_any_title_that_reaches_past_the_figure():
    """Not only the ops chart: a 3-inch figure whose long y tick labels push its plot right, titled in one line
    wider than the figure, is laid out with no text outside it."""
    fig, ax = figure(3.0, 2.0)
    ax.barh([0, 1], [1, 2])
    ax.set_yticks([0, 1], ["a rather long layer name", "another"])
    ax.set_title("a one-line title much too wide for a figure of three inches")
    assert layout_problems(fig) == []
    assert ax.get_title().count("\n") >= 1
    plt.close(fig)


def test_an_all_zero_heatmap_shows_zero_on_a_0_to_1_percent_scale(drawn):
    fig_data = plots.firing_heatmap("silent", deep_record(rate=0.0), STYLE)
    (fig,) = drawn
    assert fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    assert "every rate is zero" in fig_data.caption and fig_data.problems == []


def test_many_time_steps_thin_the_tick_labels(drawn):
    fig_data = plots.firing_heatmap("DSR", deep_record(blocks=(1,), T=50), STYLE)
    assert fig_data.problems == []
    assert [t.get_text() for t in drawn[0].axes[0].get_xticklabels()] == [str(t) for t in range(1, 51, 5)]


def test_coinciding_points_get_labels_that_do_not_overlap(trained):
    """Two models with the same energy and accuracy at every T (the 'T=4T=4' case): labels placed apart."""
    recs = copy.deepcopy(trained.records)
    twin = [copy.deepcopy(r) for r in recs if r["model"]["label"] == "tiny"]
    for r in twin:
        r["model"]["label"] = "tiny twin"
        r["case_id"] = r["case_id"].replace("tiny", "tiny twin")
    fig = plots.accuracy_vs_energy(recs + twin, declarations([trained]), model_styles(["tiny", "tiny twin",
                                                                                       "SEW w/16"]))
    assert fig.problems == []


def test_a_legend_of_many_long_labels_stays_inside_the_figure(trained):
    recs = []
    for i in range(9):
        for r in copy.deepcopy(trained.records):
            r["model"]["label"] = f"{r['model']['label']} variant number {i} with a long descriptive label"
            recs.append(r)
    labels = tb.model_order(recs)
    fig = plots.throughput_per_device(recs, declarations([trained]), model_styles(labels))
    assert fig.problems == []


def test_untrained_models_are_left_out_of_the_accuracy_plots(trained, tmp_path_factory):
    untrained = load_run(real_run(tmp_path_factory))
    declared = declarations([trained])
    mixed = [r for r in trained.records if r["model"]["label"] == "tiny"] + \
            [r for r in untrained.records if r["model"]["label"] == "SEW w/16"]
    styles = model_styles(["tiny", "SEW w/16"])
    fig = plots.accuracy_vs_T(mixed, declared, styles)
    assert fig.caption.endswith("Left out (no trained weights): SEW w/16.")
    assert plots.accuracy_vs_T(untrained.records, declared, styles) is None


def test_estimated_vs_measured_energy_is_in_the_report(trained, tmp_path):
    """With measured GPU energy (written in by hand: the run was made on a CPU) the energy plot joins the report,
    coloured like every other plot, and passes the layout checks."""
    gpu = gpu_like(trained.path, tmp_path / "gpu")
    recs = [r for r in load_run(gpu).records]
    for i, r in enumerate(recs):
        r["metrics"]["measured_energy"]["gpu_energy_j_per_sample"] = 0.01 * (i + 1)
    declared = declarations([load_run(gpu)])
    fig = plots.estimated_vs_measured(recs, declared, model_styles(["tiny", "SEW w/16"]))
    assert fig.name == "estimated_vs_measured_energy" and fig.problems == []
    assert "log-log fit" in fig.caption
    assert plots.estimated_vs_measured(trained.records, declarations([trained]), {}) is None  # no GPU values


def test_figures_drawn_in_worker_processes_equal_those_drawn_here(trained, monkeypatch):
    """Forked workers (several cores, Linux) draw the same figures, byte for byte, in the same order, as one
    process drawing them in turn (``SNNBENCH_FIGURE_WORKERS=1``)."""
    monkeypatch.setenv("SNNBENCH_FIGURE_WORKERS", "1")
    serial = build_content([trained]).figures
    monkeypatch.setenv("SNNBENCH_FIGURE_WORKERS", "2")
    forked = build_content([trained]).figures
    assert len(serial) >= 7
    assert [(f.name, f.png, f.caption, f.problems) for f in forked] == \
        [(f.name, f.png, f.caption, f.problems) for f in serial]


def _fails() -> None:
    raise ValueError("a figure that cannot be drawn")


def test_an_error_in_a_worker_is_raised_as_in_the_loop(monkeypatch):
    monkeypatch.setenv("SNNBENCH_FIGURE_WORKERS", "2")
    assert plots.draw_all([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]
    with pytest.raises(ValueError, match="cannot be drawn"):
        plots.draw_all([lambda: 1, _fails])


def _started(folder, i: int, seconds: float):
    def job() -> int:
        (folder / str(i)).write_text(repr(time.time()))
        time.sleep(seconds)
        return i
    return job


def test_the_first_job_starts_before_the_others_and_results_keep_their_order(monkeypatch, tmp_path):
    """``draw_all(first=i)`` starts job i (the longest figure) with the first workers: it never waits behind the
    short ones; the results come back in the jobs' order."""
    monkeypatch.setenv("SNNBENCH_FIGURE_WORKERS", "2")
    jobs = [_started(tmp_path, i, 0.3 if i == 3 else 0.1) for i in range(4)]
    assert plots.draw_all(jobs, first=3) == [0, 1, 2, 3]
    start = {i: float((tmp_path / str(i)).read_text()) for i in range(4)}
    assert start[3] < min(start[1], start[2])


def test_the_worker_count_setting(monkeypatch):
    monkeypatch.setenv("SNNBENCH_FIGURE_WORKERS", "3")
    assert plots.figure_workers() == 3
    monkeypatch.setenv("SNNBENCH_FIGURE_WORKERS", "zero")
    with pytest.warns(UserWarning, match="not a positive integer"):
        assert plots.figure_workers() >= 1


def _dies() -> None:
    os._exit(3)


def test_a_worker_that_dies_is_an_error_not_a_wait(monkeypatch):
    from concurrent.futures.process import BrokenProcessPool

    monkeypatch.setenv("SNNBENCH_FIGURE_WORKERS", "2")
    with pytest.raises(BrokenProcessPool):
        plots.draw_all([lambda: 1, _dies])
