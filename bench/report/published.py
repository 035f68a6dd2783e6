"""Published top-1 accuracies, so reports show our numbers beside the papers' where the setting matches.

Transcribed from /work/shared/reference/architectures.md, which tags each fact with how it was
checked: ``log`` (official training logs), ``code`` (official code), ``paper`` (paper or abstract),
``recalled`` (not checked against a source). A report matches an entry only on the same registered
model name, the same dataset and the same T; it never compares across settings.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_FILE = "shared/reference/architectures.md"
# The declared field the published numbers are values of: (metric, field), top-1 in percent.
PUBLISHED_FIELD = ("accuracy", "top1")


@dataclass(frozen=True)
class Published:
    model: str  # registered model name
    dataset: str  # bench.data dataset name (lower case)
    T: int
    top1: float  # percent
    source: str
    confidence: str  # log | code | paper | recalled (as tagged in the reference)

    def cite(self) -> str:
        return f"{self.source} [{self.confidence}]"


_SEW_LOGS = "Fang et al. 2021 (SEW ResNet), official training logs"
_PLAIN_LOGS = "SEW ResNet official logs (plain Spiking ResNet reimplementation)"
_MS = "Hu et al. (MS-ResNet)"
_DANET = "Li, Lei & Yang 2023 (DANet), arXiv 2311.05171 abstract"
_SPIKEFORMER = "Li, Lei & Yang 2022 (Spikeformer), official training logs"
_DSR = "Meng et al. 2022 (DSR), CVPR"

PUBLISHED: tuple[Published, ...] = (
    # Plain Spiking ResNet on ImageNet at T=4 (degradation with depth).
    Published("spiking_resnet18", "imagenet", 4, 62.32, _PLAIN_LOGS, "log"),
    Published("spiking_resnet34", "imagenet", 4, 61.86, _PLAIN_LOGS, "log"),
    Published("spiking_resnet50", "imagenet", 4, 57.66, _PLAIN_LOGS, "log"),
    Published("spiking_resnet101", "imagenet", 4, 31.79, _PLAIN_LOGS, "log"),
    Published("spiking_resnet152", "imagenet", 4, 10.03, _PLAIN_LOGS, "log"),
    # SEW ResNet (ADD) on ImageNet at T=4.
    Published("sew_resnet18", "imagenet", 4, 63.18, _SEW_LOGS, "log"),
    Published("sew_resnet34", "imagenet", 4, 67.04, _SEW_LOGS, "log"),
    Published("sew_resnet50", "imagenet", 4, 67.78, _SEW_LOGS, "log"),
    Published("sew_resnet101", "imagenet", 4, 68.76, _SEW_LOGS, "log"),
    Published("sew_resnet152", "imagenet", 4, 69.26, _SEW_LOGS, "log"),
    # MS-ResNet on ImageNet.
    Published("ms_resnet18", "imagenet", 6, 63.10, _MS, "paper/recalled"),
    Published("ms_resnet34", "imagenet", 6, 69.42, _MS, "paper/recalled"),
    Published("ms_resnet104", "imagenet", 5, 74.21, _MS, "paper/recalled"),
    # DANet (reconstructed model; the abstract gives ResNet-50/101/152 with DA connections at T=4).
    Published("danet_a50", "imagenet", 4, 73.71, _DANET, "paper"),
    Published("danet_a101", "imagenet", 4, 76.13, _DANET, "paper"),
    Published("danet_a152", "imagenet", 4, 77.22, _DANET, "paper"),
    # Spikeformer.
    Published("spikeformer_imagenet", "imagenet", 4, 78.31, _SPIKEFORMER, "log"),
    Published("spikeformer_dvs_cifar10", "dvs_cifar10", 4, 81.4, _SPIKEFORMER, "log"),
    Published("spikeformer_dvs_gesture", "dvs_gesture", 16, 98.96, _SPIKEFORMER, "log"),
    # DSR-trained nets.
    Published("dsr_preact_resnet18", "cifar10", 20, 95.40, _DSR + " (LIF)", "recalled"),
    Published("dsr_preact_resnet18_if", "cifar10", 20, 95.24, _DSR + " (IF)", "recalled"),
    Published("dsr_preact_resnet18", "cifar100", 20, 78.50, _DSR + " (LIF)", "recalled"),
    Published("dsr_preact_resnet18_if", "cifar100", 20, 78.20, _DSR + " (IF)", "recalled"),
    Published("dsr_preact_resnet18_imagenet", "imagenet", 50, 67.74, _DSR, "recalled"),
    # The reference gives no T for this one; T=20 is the frame count of our VGG-11 (registry default).
    Published("dsr_vgg11", "dvs_cifar10", 20, 77.27, _DSR + " (T from our registry default)", "recalled"),
)


def normalise_dataset(name: str) -> str:
    """'CIFAR10-DVS', 'dvs-cifar10' and 'dvs_cifar10' all name one dataset."""
    key = name.lower().replace("-", "_").replace(" ", "_")
    return {"cifar10_dvs": "dvs_cifar10", "dvsgesture": "dvs_gesture", "dvs128_gesture": "dvs_gesture"}.get(key, key)


def published_for(model: str, dataset: str, T: int | None = None) -> list[Published]:
    """Entries for a registered model name on a dataset (and at T, if given)."""
    ds = normalise_dataset(dataset)
    return [p for p in PUBLISHED if p.model == model and p.dataset == ds and (T is None or p.T == T)]
