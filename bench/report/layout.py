"""Layout of rendered figures, measured: every text inside the figure, no two texts overlapping.

matplotlib gives each drawn artist its bounding box in display pixels (``artist.get_window_extent(renderer)``
after ``fig.canvas.draw()``). :func:`layout_problems` lists every visible text (titles, axis labels, tick
labels, legend entries and the legend box, annotations, colour-bar labels) that reaches outside the figure,
and every pair of them that overlaps; the report renders each figure through :func:`finish`, which records
these problems with the PNG (tests require none). :func:`place_labels` puts point labels where they overlap
nothing already drawn.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import imsave  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from bench.palette import DPI  # noqa: E402

SLACK_PX = 1.0  # rounding slack when testing containment and overlap
MARKER_PX = 3.0  # half the size (points) of the area a plotted marker keeps free of labels
# Candidate offsets (points) and alignments for a point label, in order of preference.
OFFSETS = ((4, 4, "left", "bottom"), (4, -4, "left", "top"), (-4, 4, "right", "bottom"), (-4, -4, "right", "top"),
           (0, 7, "center", "bottom"), (0, -7, "center", "top"), (9, 0, "left", "center"), (-9, 0, "right", "center"))


def _visible(artist: Any) -> bool:
    return artist.get_visible() and (not isinstance(artist, Text) or bool(artist.get_text().strip()))


def texts(fig: Figure) -> list[tuple[str, Any]]:
    """(description, artist) of every visible text of the figure, and each legend's box."""
    out: list[tuple[str, Any]] = [(f"figure text {t.get_text()!r}", t) for t in fig.texts]
    for i, ax in enumerate(fig.axes):
        where = f"axes {i}"
        for t in (ax.title, ax.xaxis.label, ax.yaxis.label):
            out.append((f"{where} {t.get_text()!r}", t))
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if lo - 1e-9 * abs(hi - lo) <= tick.get_loc() <= hi + 1e-9 * abs(hi - lo):
                    out.append((f"{where} {name}-tick {tick.label1.get_text()!r}", tick.label1))
        out += [(f"{where} label {t.get_text()!r}", t) for t in ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            out.append((f"{where} legend box", legend))
    for legend in fig.legends:
        out.append(("figure legend box", legend))
    return [(d, a) for d, a in out if _visible(a)]


def _inside(box: Bbox, outer: Bbox) -> bool:
    return (box.x0 >= outer.x0 - SLACK_PX and box.y0 >= outer.y0 - SLACK_PX and box.x1 <= outer.x1 + SLACK_PX
            and box.y1 <= outer.y1 + SLACK_PX)


def _overlap(a: Bbox, b: Bbox) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > SLACK_PX) and (min(a.y1, b.y1) - max(a.y0, b.y0) > SLACK_PX)


def layout_problems(fig: Figure) -> list[str]:
    """Texts outside the figure, and overlapping pairs of texts (a legend counts as its box)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(d, a.get_window_extent(renderer)) for d, a in texts(fig)]
    problems = [f"{d} reaches outside the figure" for d, box in boxes if not _inside(box, fig.bbox)]
    for i, (d1, b1) in enumerate(boxes):
        problems += [f"{d1} overlaps {d2}" for d2, b2 in boxes[i + 1:] if _overlap(b1, b2)]
    return problems


def finish(fig: Figure) -> tuple[bytes, int, list[str]]:
    """The figure as PNG bytes, its width in pixels and its layout problems; closes it. One draw: the problems are
    measured on the very pixels saved (the figure is made at :data:`bench.palette.DPI`, see :func:`figure`), which
    are then encoded as they are, not drawn again by ``savefig``."""
    problems = layout_problems(fig)
    buf = io.BytesIO()
    imsave(buf, fig.canvas.buffer_rgba(), format="png", origin="upper", dpi=fig.dpi, metadata={"Software": None})
    width = int(fig.bbox.width)
    plt.close(fig)
    return buf.getvalue(), width, problems


def figure(width: float, height: float, **subplots: Any) -> tuple[Figure, Any]:
    """A constrained-layout figure of ``width`` x ``height`` inches at :data:`bench.palette.DPI` (the resolution it
    is measured and saved at) and its axes (``plt.subplots`` keywords: rows, columns, ``squeeze``)."""
    fig, axes = plt.subplots(figsize=(width, height), dpi=DPI, layout="constrained", **subplots)
    return fig, axes


def freeze_layout(fig: Figure) -> None:
    """Run the layout engine once and keep its result, so texts placed next stay where they are measured."""
    fig.canvas.draw()
    fig.set_layout_engine("none")


def place_labels(ax: Any, points: Iterable[tuple[float, float, str]], **text_kw: Any) -> list[str]:
    """Label each (x, y, text) point at the first offset where the label stays inside the axes and overlaps no
    label, tick label, legend or labelled point already drawn; returns the labels left out (no free place).
    Call after :func:`freeze_layout`."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    points = list(points)
    taken = [a.get_window_extent(renderer) for _, a in texts(fig)]
    marker = MARKER_PX * fig.dpi / 72
    for x, y, _ in points:  # the markers themselves: a label does not cover another point
        px, py = ax.transData.transform((x, y))
        taken.append(Bbox.from_extents(px - marker, py - marker, px + marker, py + marker))
    area = ax.get_window_extent(renderer)
    left_out = []
    for x, y, text in points:
        for dx, dy, ha, va in OFFSETS:
            label = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, va=va, **text_kw)
            box = label.get_window_extent(renderer)
            if _inside(box, area) and not any(_overlap(box, other) for other in taken):
                taken.append(box)
                break
            label.remove()
        else:
            left_out.append(text)
    return left_out


def fit_legend(ax: Any, n: int, max_cols: int = 3, wrap: int = 48) -> None:
    """The axes' legend below the plot (outside it: constrained layout keeps room for it), in as many columns
    (up to ``max_cols``) as fit the figure's width, entries wrapped at ``wrap`` characters; the figure grows by
    the legend's height, so the axes keep theirs."""
    if not n:
        return
    fig = ax.figure
    handles, labels = ax.get_legend_handles_labels()
    labels = [textwrap.fill(label, wrap) for label in labels]
    renderer = fig.canvas.get_renderer()
    for ncol in range(min(max_cols, n), 0, -1):  # the legend's size needs no draw of the figure
        legend = fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)
        box = legend.get_window_extent(renderer)
        if ncol == 1 or box.width <= fig.bbox.width - 2 * SLACK_PX:
            break
        legend.remove()
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + box.height / fig.dpi)  # the axes keep their height
