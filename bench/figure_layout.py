"""Layout of rendered figures: axes placed once from their measured decorations, every text inside the figure,
no two texts overlapping, no legend over a plot. Used by the report's figures and by ``bench history``'s plot
(:mod:`bench.history`), so it lives outside :mod:`bench.report` (which the history must not import).

Placement (:class:`FixedLayout`, the layout engine of every report and history figure, see :func:`figure`): matplotlib gives each
axes the bounding box of its decorations (tick labels, axis labels, title) in display pixels; the grid's axes are
placed so that these fit inside the figure with :data:`PAD_IN` around them, above the figure legend, all axes equally
wide and tall: one measurement per figure, where constrained layout measures twice. Titles and axis labels count by
their centre along the axis, as in constrained layout (titles are wrapped to the figure's width instead, and
re-wrapped when their plot stands so far off-centre that they would reach past the figure's side).

Check: :func:`layout_problems` lists every visible text (titles, axis labels, tick labels, legend entries and the
legend box, annotations, colour-bar labels) that reaches outside the figure, every pair of them that overlaps, and
every figure legend that covers a plot area; the report renders each figure through :func:`finish`, which records
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
from matplotlib.colorbar import Colorbar  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import imsave  # noqa: E402
from matplotlib.layout_engine import LayoutEngine  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from bench.palette import DPI  # noqa: E402

SLACK_PX = 1.0  # rounding slack when testing containment and overlap
MARKER_PX = 3.0  # half the size (points) of the area a plotted marker keeps free of labels
# Candidate offsets (points) and alignments for a point label, in order of preference.
OFFSETS = ((4, 4, "left", "bottom"), (4, -4, "left", "top"), (-4, 4, "right", "bottom"), (-4, -4, "right", "top"),
           (0, 7, "center", "bottom"), (0, -7, "center", "top"), (9, 0, "left", "center"), (-9, 0, "right", "center"))
# Placement, in constrained layout's default proportions (the look the figures had under it).
PAD_IN = 3 / 72  # inches around each axes' decorations, and at the figure's edges
SPACE = 0.02  # more room between two rows (columns) of axes, a fraction of the figure's height (width)
COLORBAR_ASPECT = 20  # a colour bar's height / width
COLORBAR_PAD_IN = 0.15  # inches between an axes and its colour bar
PNG_COMPRESSION = 3  # zlib level: as small as the default 6 on these figures (0.4 % larger), a third faster


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
    plots = [(i, ax.bbox) for i, ax in enumerate(fig.axes) if ax.get_visible()]
    for legend in fig.legends:
        if legend.get_visible():
            box = legend.get_window_extent(renderer)
            problems += [f"figure legend box overlaps the plot of axes {i}" for i, area in plots if _overlap(box, area)]
    return problems


def finish(fig: Figure) -> tuple[bytes, int, list[str]]:
    """The figure as PNG bytes, its width in pixels and its layout problems; closes it. One draw: the problems are
    measured on the very pixels saved (the figure is made at :data:`bench.palette.DPI`, see :func:`figure`), which
    are then encoded as they are, not drawn again by ``savefig``."""
    problems = layout_problems(fig)
    buf = io.BytesIO()
    imsave(buf, fig.canvas.buffer_rgba(), format="png", origin="upper", dpi=fig.dpi, metadata={"Software": None},
           pil_kwargs={"compress_level": PNG_COMPRESSION})
    width = int(fig.bbox.width)
    plt.close(fig)
    return buf.getvalue(), width, problems


def figure(width: float, height: float, **subplots: Any) -> tuple[Figure, Any]:
    """A figure of ``width`` x ``height`` inches at :data:`bench.palette.DPI` (the resolution it is measured and saved
    at), laid out by :class:`FixedLayout`, and its axes (``plt.subplots`` keywords: rows, columns, ``squeeze``)."""
    fig, axes = plt.subplots(figsize=(width, height), dpi=DPI, layout=FixedLayout(), **subplots)
    return fig, axes


class FixedLayout(LayoutEngine):
    """Layout engine of the report's figures: on each draw, :func:`place_axes`, with the colour bars attached by
    :func:`colorbar` (axes -> its colour bar's axes)."""

    _adjust_compatible = False
    _colorbar_gridspec = False

    def __init__(self) -> None:
        super().__init__()
        self.colorbars: dict[Any, Any] = {}

    def execute(self, fig: Figure) -> None:
        place_axes(fig, self.colorbars)


def colorbar(ax: Any, mappable: Any, label: str) -> Colorbar:
    """A colour bar right of ``ax`` (a figure made by :func:`figure`), as tall as it and 1/:data:`COLORBAR_ASPECT`
    as wide, :data:`COLORBAR_PAD_IN` from it; :class:`FixedLayout` keeps it there."""
    fig = ax.figure
    cax = fig.add_axes((0.0, 0.0, 1.0, 1.0))  # placed by the layout
    fig.get_layout_engine().colorbars[ax] = cax
    bar = fig.colorbar(mappable, cax=cax, label=label)
    cax.grid(False)  # the style's grid is for plots, not for the colour scale
    return bar


def _overhangs(ax: Any, renderer: Any) -> tuple[float, float, float, float]:
    """How far (pixels) the axes' decorations reach out of its plot area: left, bottom, right, top."""
    pos = ax.get_position().transformed(ax.figure.transFigure)
    tight = ax.get_tightbbox(renderer, for_layout_only=True) or pos
    return pos.x0 - tight.x0, pos.y0 - tight.y0, tight.x1 - pos.x1, tight.y1 - pos.y1


def _tick_locations(fig: Figure) -> list[tuple[float, ...]]:
    """Every visible axis' major and minor tick locations: what an axes' decorations depend on its size for."""
    return [tuple(locs) for ax in fig.axes if ax.get_visible() for axis in (ax.xaxis, ax.yaxis)
            for locs in (axis.get_majorticklocs(), axis.get_minorticklocs())]


def place_axes(fig: Figure, colorbars: dict[Any, Any]) -> None:
    """Place the grid's axes (one cell each, as ``plt.subplots`` makes them) and their colour bars: every axes as
    wide and as tall as the others, their decorations inside the figure and above its legends, :data:`PAD_IN` around
    them and :data:`SPACE` more between rows and columns. The decorations are measured where the axes stand, and once
    more when an axis picks other ticks at its new size (nothing else about them depends on where the axes stand).
    A title that then reaches past the figure's sides is re-wrapped to fit (:func:`_fit_titles`) and the axes placed
    again for its new height; a figure whose titles fit is placed once."""
    _place(fig, colorbars)
    if _fit_titles(fig):
        _place(fig, colorbars)


def _place(fig: Figure, colorbars: dict[Any, Any]) -> None:
    for _ in range(2):
        ticks = _tick_locations(fig)
        _arrange(fig, colorbars)
        if _tick_locations(fig) == ticks:
            break


def _fit_titles(fig: Figure) -> bool:
    """Re-wrap each axes title that reaches nearer than :data:`PAD_IN` to the figure's left or right edge (a title
    is centred on its plot, which tick labels push off the figure's centre) at the most characters per line that
    keep it inside, the same words; whether any title changed. Titles are wrapped to the figure's width when set
    (``bench.report.plots``), so this is for a plot standing off-centre."""
    renderer = fig.canvas.get_renderer()
    pad, width = PAD_IN * fig.dpi, fig.bbox.width
    changed = False
    for ax in fig.axes:
        title = ax.title
        if not (ax.get_visible() and _visible(title)):
            continue
        box = title.get_window_extent(renderer)
        centre = (box.x0 + box.x1) / 2
        room = 2 * min(centre - pad, width - pad - centre)  # the widest a title centred there may be
        if box.width <= room + SLACK_PX:
            continue
        words = " ".join(title.get_text().split())
        chars = max(len(line) for line in title.get_text().splitlines())
        while box.width > room + SLACK_PX and chars > 1:
            chars = max(1, min(chars - 1, int(chars * room / box.width)))
            title.set_text(textwrap.fill(words, chars))
            box = title.get_window_extent(renderer)
        changed = True
    return changed


def _arrange(fig: Figure, colorbars: dict[Any, Any]) -> None:
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    pad, cb_pad = PAD_IN * fig.dpi, COLORBAR_PAD_IN * fig.dpi
    cells = [ax for ax in fig.axes if ax.get_subplotspec() is not None]
    rows, cols = cells[0].get_subplotspec().get_gridspec().get_geometry()
    where = {ax: (ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in cells}
    cells = [ax for ax in cells if ax.get_visible()]
    left, right, bottom, top = [0.0] * cols, [0.0] * cols, [0.0] * rows, [0.0] * rows
    bar_right: dict[Any, float] = {}  # how far a colour bar's decorations reach right of the bar
    for ax in cells:
        r, c = where[ax]
        lo, b, ro, t = _overhangs(ax, renderer)
        if ax in colorbars:
            _, cb, bar_right[ax], ct = _overhangs(colorbars[ax], renderer)
            b, t = max(b, cb), max(t, ct)
        left[c], right[c], bottom[r], top[r] = max(left[c], lo), max(right[c], ro), max(bottom[r], b), max(top[r], t)
    floor = max((legend.get_window_extent(renderer).y1 for legend in fig.legends if legend.get_visible()), default=0.0)
    gap_v, gap_h = 2 * pad + SPACE * height, 2 * pad + SPACE * width
    h = max(1.0, (height - floor - 2 * pad - sum(top) - sum(bottom) - (rows - 1) * gap_v) / rows)
    bar_w = h / COLORBAR_ASPECT
    for ax, reach in bar_right.items():  # a colour bar widens its column's right margin
        c = where[ax][1]
        right[c] = max(right[c], cb_pad + bar_w + reach)
    w = max(1.0, (width - 2 * pad - sum(left) - sum(right) - (cols - 1) * gap_h) / cols)
    x0 = [pad + sum(left[:c + 1]) + sum(right[:c]) + c * (w + gap_h) for c in range(cols)]
    y1 = [height - pad - sum(top[:r + 1]) - sum(bottom[:r]) - r * (h + gap_v) for r in range(rows)]
    for ax in cells:
        r, c = where[ax]
        ax.set_position((x0[c] / width, (y1[r] - h) / height, w / width, h / height))
        if ax in colorbars:
            colorbars[ax].set_position(((x0[c] + w + cb_pad) / width, (y1[r] - h) / height, bar_w / width,
                                        h / height))


def freeze_layout(fig: Figure) -> None:
    """Place the axes once (:func:`place_axes`) and keep them there, so texts placed next stay where they are
    measured."""
    engine = fig.get_layout_engine()
    place_axes(fig, engine.colorbars)
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
    """The axes' legend below the plot (outside it: :func:`place_axes` keeps room for it), in as many columns
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
