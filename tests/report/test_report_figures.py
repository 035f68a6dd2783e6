"""Report figures measured after rendering (matplotlib's bounding boxes): texts inside the figure and not
overlapping, per-layer charts in stages past 40 layers with the full table kept, an outlier bar cut with its
total written, all-zero heatmaps on a 0..1 % scale, legends that fit, point labels placed apart, the
estimated-vs-measured energy plot in the report, untrained models out of the accuracy plots."""

from __future__ import annotations

import copy
import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from real_run import gpu_like, real_run
from weights import relabelled

from bench.palette import DPI, ModelStyle, model_styles
from bench.report import plots
from bench.report import tables as tb
from bench.report.content import build_content
from bench.report.declared import declarations
from bench.report.layout import figure, finish, fit_legend, freeze_layout, layout_problems
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
