"""Published top-1 accuracies with their sources and conditions, and the gap of a reproduction.

Every entry says where its number comes from (a paper table, an abstract, an official training log) and
how far that was checked (``confidence``): ``log`` (read in the authors' training logs), ``code`` (the
official code), ``abstract`` (the paper's abstract), ``unverified`` (not checked against the paper here).
Each carries its conditions: T (``None`` where the source does not state it), input size and training recipe.

An entry **binds** to registered model names (``models``): the report shows our top-1 beside it, at the same
dataset and T, and a gap where the comparison is meaningful. An entry without models is a **reference**:
shown beside the registered models its ``shown_for`` pattern matches, on its dataset, never with a gap (DANet:
the abstract does not name the variant; the SEW DVS nets are custom nets we do not register).

A **reproduction** is a case evaluated from an official checkpoint (``model.checkpoint_format`` other than
ours, ``snnbench``) of an unmodified model on the dataset and T of a binding entry: its derived value
``published_gap.top1`` = ours - published (percentage points) is what ``bench compare`` and ``bench diff``
check against a suite tolerance ``"published_gap.top1" = { abs = 0.5 }`` (applied to |gap|).

Plain data and the standard library only: the report, ``bench compare`` and ``bench diff`` read it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The declared field published numbers are values of: (metric, field), top-1 in percent.
PUBLISHED_FIELD = ("accuracy", "top1")
GAP_KEY = "published_gap.top1"  # the derived value of a reproduction (ours - published, points)
OURS_FORMAT = "snnbench"  # checkpoint_format of weights trained or exported by snnbench


@dataclass(frozen=True)
class Published:
    dataset: str  # bench.data dataset name (lower case)
    T: int | None  # None: the source does not state T
    top1: float  # percent
    source: str  # paper table, abstract or official log (path)
    confidence: str  # log | code | abstract | unverified
    models: tuple[str, ...] = ()  # registered names the number binds to; empty: a reference
    shown_for: str = ""  # a reference: shell pattern of the registered names it is shown beside
    architecture: str = ""  # the net the number is for, in the source's words
    input_size: str = ""
    recipe: str = ""  # training recipe, as the source gives it
    not_comparable: str = ""  # why our own (non-official) weights cannot be compared with it, if so

    @property
    def reference(self) -> bool:
        return not self.models

    def conditions(self) -> str:
        """T, input size and recipe in one line."""
        T = f"T={self.T}" if self.T is not None else "T not stated"
        return "; ".join(p for p in (T, self.input_size, self.recipe) if p)

    def cite(self) -> str:
        return f"{self.source} [{self.confidence}]"


_SEW_REPO = "github.com/fangwei123456/Spike-Element-Wise-ResNet"
_IMAGENET = "224 px (resize 256, centre crop)"
_SEW_RECIPE = "SGD lr 0.1, batch 32 per GPU, cosine schedule over 320 epochs (log folder name)"


def _sew_log(name: str) -> str:
    return f"Fang et al. 2021 (SEW ResNet), official log {_SEW_REPO}/origin_logs/imagenet/{name}"


def _plain(depth: int, top1: float) -> Published:
    # The origin code calls the plain Spiking ResNet "mem_add_resnet2" (origin_logs/readme.md).
    return Published("imagenet", 4, top1, _sew_log(f"spiking_resnet/mem_add_resnet2_{depth}_b32_lr0.1_T4_zi_coslr320_"
                                                   "sgd_logs"), "log", (f"spiking_resnet{depth}",),
                     architecture=f"Spiking ResNet-{depth}", input_size=_IMAGENET, recipe=_SEW_RECIPE)


def _sew(depth: int, top1: float) -> Published:
    # The origin code calls SEW ResNet "spiking_resnet" (origin_logs/readme.md).
    return Published("imagenet", 4, top1, _sew_log(f"sew_resnet/spiking_resnet{depth}_b32_lr0.1_T4_coslr320_sgd_"
                                                   "cnf_add_logs"), "log", (f"sew_resnet{depth}",),
                     architecture=f"SEW ResNet-{depth} (ADD)", input_size=_IMAGENET, recipe=_SEW_RECIPE)


_MS = "Hu et al. 2021 (MS-ResNet), arXiv 2112.08954"
_MS_T = "T=6 from the official code (models/MS_ResNet.py: time_window = 6, used by train_amp.py)"
_DANET = ("Li, Lei & Yang, arXiv 2311.05171v1 abstract (Neurocomputing 616:128950): \"our best-performing "
          "ResNet-50/101/152 obtain 73.71%/76.13%/77.22% top-1 accuracy on ImageNet with 4 time steps\"; the paper "
          "is available as a PDF; its body was not checked")
_SPIKEFORMER = "Li, Lei & Yang 2022 (Spikeformer), official training logs"
_DSR = "Meng et al. 2022 (DSR), CVPR"
_DSR_HYBRID = ("hybrid training: an ANN pre-trained, thresholds initialised from its maximum activations, then "
               "DSR fine-tuning")

PUBLISHED: tuple[Published, ...] = (
    # Plain Spiking ResNet on ImageNet at T=4 (degradation with depth).
    _plain(18, 62.32), _plain(34, 61.86), _plain(50, 57.66), _plain(101, 31.79), _plain(152, 10.03),
    # SEW ResNet (ADD) on ImageNet at T=4.
    _sew(18, 63.18), _sew(34, 67.04), _sew(50, 67.78), _sew(101, 68.76), _sew(152, 69.26),
    # SEW ResNet on DVS data: small custom nets (7 SEW blocks, PLIF, 128x128 events), not registered here.
    Published("dvs_gesture", 16, 97.92, f"Fang et al. 2021 (SEW ResNet), official log {_SEW_REPO}/origin_logs/"
              "dvsgesture/DVSGNetSEW32_b16_lr0.001_T16_Ttrain12_zi_steplr64_0.1_sgd_cnf_add_logs", "log",
              shown_for="sew_resnet*", architecture="DVSGNetSEW32 (dvsgesture/smodels.py: 7 SEW blocks of 32 channels)",
              input_size="128x128 event frames",
              recipe="SGD lr 0.001, step x0.1 every 64 epochs, 192 epochs, trained at T=12, tested at T=16"),
    Published("dvs_cifar10", 16, 74.4, f"Fang et al. 2021 (SEW ResNet), official log {_SEW_REPO}/origin_logs/"
              "cifar10dvs/SEWResNet_ADD_T_16_T_train_None_SGD_lr_0.01_CosALR_64_amp", "log",
              shown_for="sew_resnet*", architecture="SEWResNet ADD (cifar10dvs/smodels.py: 7 SEW blocks, 64/128 channels)",
              input_size="128x128 event frames", recipe="SGD lr 0.01, cosine over 64 epochs, AMP"),
    # MS-ResNet on ImageNet: 18/34/104 not checked against the paper; the abstract gives 104 at 76.02.
    Published("imagenet", 6, 63.10, f"{_MS}, value not checked against the paper", "unverified", ("ms_resnet18",),
              architecture="MS-ResNet-18", input_size=_IMAGENET, recipe=_MS_T),
    Published("imagenet", 6, 69.42, f"{_MS}, value not checked against the paper", "unverified", ("ms_resnet34",),
              architecture="MS-ResNet-34", input_size=_IMAGENET, recipe=_MS_T),
    Published("imagenet", 6, 74.21, f"{_MS}, value not checked against the paper", "unverified", ("ms_resnet104",),
              architecture="MS-ResNet-104", input_size=_IMAGENET, recipe=_MS_T),
    Published("imagenet", None, 76.02, f"{_MS}, abstract", "abstract", shown_for="ms_resnet104",
              architecture="MS-ResNet-104 (T and input size not stated in the abstract)"),
    # DANet: the abstract does not name the variant; our nets are reconstructions. References, never a gap.
    *(Published("imagenet", 4, top1, _DANET, "abstract", shown_for=f"danet_*{depth}",
                architecture=f"DANet ResNet-{depth} (variant not identified; ours are reconstructions)")
      for depth, top1 in ((50, 73.71), (101, 76.13), (152, 77.22))),
    # Spikeformer.
    Published("imagenet", 4, 78.31, _SPIKEFORMER, "log", ("spikeformer_imagenet",), input_size=_IMAGENET),
    Published("dvs_cifar10", 4, 81.4, _SPIKEFORMER, "log", ("spikeformer_dvs_cifar10",)),
    Published("dvs_gesture", 16, 98.96, _SPIKEFORMER, "log", ("spikeformer_dvs_gesture",)),
    # DSR-trained nets (numbers not checked against the paper here).
    Published("cifar10", 20, 95.40, _DSR + " (LIF)", "unverified", ("dsr_preact_resnet18",)),
    Published("cifar10", 20, 95.24, _DSR + " (IF)", "unverified", ("dsr_preact_resnet18_if",)),
    Published("cifar100", 20, 78.50, _DSR + " (LIF)", "unverified", ("dsr_preact_resnet18",)),
    Published("cifar100", 20, 78.20, _DSR + " (IF)", "unverified", ("dsr_preact_resnet18_if",)),
    Published("imagenet", 50, 67.74, _DSR + " (IF)", "unverified", ("dsr_preact_resnet18_imagenet",),
              input_size=_IMAGENET, recipe=_DSR_HYBRID,
              not_comparable="the published number used hybrid training (ANN pre-training, thresholds from its "
                             "maximum activations, then DSR fine-tuning); weights trained from scratch are not "
                             "comparable"),
    Published("dvs_cifar10", 20, 77.27, _DSR + " (T not given here; 20 is our registry default)", "unverified",
              ("dsr_vgg11",)),
)
CONFIDENCE = {"log": "read in the authors' training logs", "code": "read in the official code",
              "abstract": "stated in the paper's abstract", "unverified": "not checked against the paper here"}


def normalise_dataset(name: str) -> str:
    """'CIFAR10-DVS', 'dvs-cifar10' and 'dvs_cifar10' all name one dataset."""
    key = name.lower().replace("-", "_").replace(" ", "_")
    return {"cifar10_dvs": "dvs_cifar10", "dvsgesture": "dvs_gesture", "dvs128_gesture": "dvs_gesture"}.get(key, key)


def published_for(model: str, dataset: str, T: int | None = None) -> list[Published]:
    """Entries binding a registered model name on a dataset (at T, if given), then the references shown
    beside it on that dataset."""
    ds = normalise_dataset(dataset)
    bound = [p for p in PUBLISHED if model in p.models and p.dataset == ds and (T is None or p.T == T)]
    refs = [p for p in PUBLISHED if p.reference and p.dataset == ds and fnmatch.fnmatchcase(model, p.shown_for)]
    return bound + refs


def official_weights(record: Mapping[str, Any]) -> bool:
    """The case ran from an official checkpoint (a format other than ours)."""
    fmt = (record.get("model") or {}).get("checkpoint_format")
    return bool(fmt) and fmt != OURS_FORMAT


def _top1(record: Mapping[str, Any]) -> float | None:
    v = ((record.get("metrics") or {}).get(PUBLISHED_FIELD[0]) or {}).get(PUBLISHED_FIELD[1])
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def reproduced(record: Mapping[str, Any]) -> tuple[Published, float] | None:
    """(the binding entry, our top-1) when the case reproduces a published number (see the module docstring)."""
    model = record.get("model") or {}
    if record.get("status") != "ok" or not official_weights(record) or model.get("kwargs"):
        return None
    ours = _top1(record)
    entries = published_for(str(model.get("name")), str((record.get("data") or {}).get("dataset", "")), record["T"])
    bound = [p for p in entries if not p.reference]
    return (bound[0], ours) if bound and ours is not None else None


def published_gaps(record: Mapping[str, Any]) -> dict[str, tuple[float, float, Published]]:
    """The derived value of a reproduction: ``{GAP_KEY: (ours, published, entry)}``, else empty."""
    hit = reproduced(record)
    if hit is None:
        return {}
    entry, ours = hit
    return {GAP_KEY: (ours, entry.top1, entry)}
