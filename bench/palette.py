"""One colour-blind-safe look for every figure (report plots and ``bench history`` plots), as plain data.

Okabe & Ito (2008) palette and one model -> style map: models sorted by label take the palette in order,
so a model keeps its colour in every plot and in every report of the same set of models; past eight models
the colours repeat with another marker and line style. No matplotlib or torch import here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Okabe-Ito, reordered so the first colours are the most distinct on white; black last.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
DPI = 120
# matplotlib rc settings shared by every figure.
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
         "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3}


@dataclass(frozen=True)
class ModelStyle:
    color: str
    marker: str
    linestyle: str


def model_styles(labels: Iterable[str]) -> dict[str, ModelStyle]:
    """Deterministic model -> style map: sorted labels take the palette in order."""
    styles = {}
    for i, label in enumerate(sorted(set(labels))):
        cycle = i // len(OKABE_ITO)
        styles[label] = ModelStyle(OKABE_ITO[i % len(OKABE_ITO)], MARKERS[(i + cycle) % len(MARKERS)],
                                   LINESTYLES[cycle % len(LINESTYLES)])
    return styles
