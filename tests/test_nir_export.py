"""``bench export --format nir``: the graph read back with ``nir.read`` has the model's structure and parameters,
a small independent NIR simulator on it gives the model's outputs, and what NIR cannot express is exit 2."""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from bench.cli import EXIT_BAD_INPUT, EXIT_OK, main
from bench.models import create_model, list_models
from bench.models.resnet_parts import LIF_025_PARAMS
from bench.nir_export import DT
from bench.train.checkpointing import save_atomic

SMALL = {"num_classes": 5, "width": 1 / 16, "input_size": "cifar"}
SIZE = 8  # pixels: the cifar stem keeps 8x8 until stage 2 halves it


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and BN statistics (not the init's identity BN), scaled so that the neurons fire."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, t in model.state_dict().items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            state[key] = t
        elif leaf == "running_var":
            state[key] = 0.5 + torch.rand(t.shape, generator=g)
        elif leaf in ("running_mean", "w"):
            state[key] = 0.1 * torch.randn(t.shape, generator=g)
        elif t.dim() == 1 and leaf == "weight":
            state[key] = 0.5 + torch.rand(t.shape, generator=g)
        elif t.dim() == 1:
            state[key] = 0.1 + 0.6 * torch.rand(t.shape, generator=g)
        else:
            state[key] = torch.randn(t.shape, generator=g) / math.sqrt(t[0].numel()) * 2.0
    model.load_state_dict(state)
    return model.eval()


def export(tmp_path, name: str, kwargs: dict, *extra: str) -> tuple[int, torch.nn.Module]:
    """A checkpoint of a randomised model, exported through the CLI to ``tmp_path/model.nir``."""
    model = randomised(create_model(name, **kwargs))
    source = tmp_path / "model.pt"
    save_atomic({"model": model.state_dict(), "meta": {"model": name, "kwargs": kwargs}}, source)
    code = main(["export", str(source), "--format", "nir", "--out", str(tmp_path / "model.nir"), *extra])
    return code, model


def simulate(graph: nir.NIRGraph, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Run a read-back graph on ``x`` ``[T, B, C, H, W]`` in float64, written from NIR's definitions alone:
    every edge into a node is summed; IF ``v += dt r I``; LIF ``v += dt / tau (v_leak - v + r I)``; both fire on
    ``v > v_threshold`` and then set ``v = v_reset``. Returns the ``[T, B, K]`` outputs and the spike count."""
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        preds[b].append(a)
    order: list[str] = []
    while len(order) < len(graph.nodes):
        order += [n for n in graph.nodes if n not in order and all(p in order for p in preds[n])]
    f64 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    state: dict[str, torch.Tensor] = {}
    outputs, spikes = [], 0
    for t in range(x.shape[0]):
        values: dict[str, torch.Tensor] = {}
        for name in order:
            node = graph.nodes[name]
            inp = x[t].double() if isinstance(node, nir.Input) else sum(values[p] for p in preds[name])
            if isinstance(node, nir.Conv2d):
                out = F.conv2d(inp, f64(node.weight), f64(node.bias), tuple(node.stride), tuple(node.padding),
                               tuple(node.dilation), int(node.groups))
            elif isinstance(node, nir.AvgPool2d):
                out = F.avg_pool2d(inp, tuple(node.kernel_size), tuple(node.stride), tuple(node.padding))
            elif isinstance(node, nir.Flatten):
                out = inp.flatten(1)
            elif isinstance(node, nir.Affine):
                out = inp @ f64(node.weight).T + f64(node.bias)
            elif isinstance(node, nir.IF | nir.LIF):
                v = state.get(name, torch.zeros_like(inp))
                if isinstance(node, nir.IF):
                    v = v + DT * f64(node.r) * inp
                else:
                    v = v + DT / f64(node.tau) * (f64(node.v_leak) - v + f64(node.r) * inp)
                fired = v > f64(node.v_threshold)
                state[name] = torch.where(fired, f64(node.v_reset).expand_as(v), v)
                out = fired.double()
                spikes += int(fired.sum())
            else:  # Input, Output
                out = inp
            values[name] = out
        outputs.append(values["output"])
    return torch.stack(outputs), spikes


def model_outputs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    functional.reset_net(model)
    with torch.no_grad():
        out = model(x)
    functional.reset_net(model)
    return out


CASES = [
    ("sew_resnet18", {}),
    ("spiking_resnet18", {"neuron": "lif", "neuron_params": LIF_025_PARAMS}),  # decay_input=False, tau 4/3
    ("spiking_resnet18", {"neuron": "lif", "neuron_params": {"tau": 2.0, "v_threshold": 0.7}}),  # decay_input
    ("sew_resnet18", {"neuron": "plif", "neuron_params": {"init_tau": 3.0}}),
]


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_read_back_graph_simulates_to_the_models_outputs(tmp_path, name, kwargs):
    code, model = export(tmp_path, name, SMALL | kwargs, "--image-size", str(SIZE))
    assert code == EXIT_OK
    graph = nir.read(tmp_path / "model.nir")
    graph.infer_types()
    assert graph.check_types(), "NIR's own shape check passes on the graph read back"
    x = 2.0 * torch.rand(4, 2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))  # changes every step
    simulated, spikes = simulate(graph, x)
    expected = model_outputs(model, x).double()
    assert spikes > 500  # the comparison covers firing neurons, not silent ones
    assert simulated.shape == expected.shape == (4, 2, 5)
    # float32 model against a float64 simulation of float32 (BN-folded) weights: rounding only, no spike flips.
    torch.testing.assert_close(simulated, expected, atol=1e-4, rtol=1e-4)


def test_sew_graph_has_the_blocks_nodes_edges_and_parameters(tmp_path):
    code, model = export(tmp_path, "sew_resnet18", SMALL, "--image-size", str(SIZE))
    assert code == EXIT_OK
    graph = nir.read(tmp_path / "model.nir")
    # 3 (input, stem conv, stem neuron) + 8 blocks x (2 convs, 1 inner neuron, block neuron) + 3 projection
    # shortcuts x (conv, neuron) + head (pool, flatten, fc) + output.
    assert len(graph.nodes) == 3 + 8 * 4 + 3 * 2 + 3 + 1
    edges = set(graph.edges)
    # SEW ADD: the sum of block 0's output neuron and its identity shortcut (the stem neuron) feeds both the
    # next block's first conv and (identity) the next sum; every consumer gets one edge from each addend.
    assert {("pre.0", "layers.0.1.branch.0"), ("layers.0.0.sn", "layers.0.1.branch.0")} <= edges
    assert {("layers.0.1.sn", "layers.1.0.branch.0"), ("layers.0.0.sn", "layers.1.0.shortcut.0"),
            ("pre.0", "layers.1.0.shortcut.0")} <= edges
    assert [a for a, b in graph.edges if b == "layers.1.1.branch.0"] == ["layers.1.0.sn", "layers.1.0.shortcut.1"]
    assert [a for a, b in graph.edges if b == "output"] == ["head.fc"]
    # BN folded by hand, channel by channel: W * g / sqrt(var + eps), (0 - mean) * g / sqrt(var + eps) + beta.
    conv, bn = model.layers[1][0].branch[0]
    node = graph.nodes["layers.1.0.branch.0"]
    for c in range(conv.out_channels):
        s = bn.weight[c].item() / math.sqrt(bn.running_var[c].item() + bn.eps)
        np.testing.assert_allclose(node.weight[c], conv.weight[c].detach().numpy() * s, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(node.bias[c], -bn.running_mean[c].item() * s + bn.bias[c].item(), rtol=1e-5)
    assert tuple(node.stride) == (2, 2) and tuple(node.padding) == (1, 1) and int(node.groups) == 1
    sn = graph.nodes["layers.1.0.sn"]
    assert isinstance(sn, nir.IF) and sn.v_threshold.shape == (8, SIZE // 2, SIZE // 2)  # 128 / 16 channels
    assert np.all(sn.v_threshold == 1.0) and np.all(sn.v_reset == 0.0) and np.allclose(sn.r, 1 / DT)
    fc = graph.nodes["head.fc"]
    np.testing.assert_array_equal(fc.weight, model.head.fc.weight.detach().numpy())
    pool = graph.nodes["head.pool"]
    assert tuple(pool.kernel_size) == (1, 1)  # 8 px halved by stages 2, 3 and 4
    assert graph.metadata["dt"] == DT


def test_lif_time_constants_follow_spikingjelly_conventions(tmp_path):
    code, _ = export(tmp_path, "spiking_resnet18", SMALL | {"neuron": "lif", "neuron_params": LIF_025_PARAMS},
                     "--image-size", "8,12")
    assert code == EXIT_OK
    graph = nir.read(tmp_path / "model.nir")
    node = graph.nodes["pre.0"]
    assert isinstance(node, nir.LIF) and node.tau.shape == (4, 8, 12)
    np.testing.assert_allclose(node.tau, 4 / 3 * DT, rtol=1e-6)  # tau_nir = tau * dt
    np.testing.assert_allclose(node.r, 4 / 3, rtol=1e-6)  # decay_input=False: r = tau
    assert np.all(node.v_leak == 0.0) and np.all(node.v_threshold == 0.5)
    # Spiking ResNet: the add is two edges into the block's output neuron.
    assert sorted(a for a, b in graph.edges if b == "layers.0.0.sn") == ["layers.0.0.branch.2", "pre.0"]


def test_default_image_size_is_the_presets(tmp_path):
    code, _ = export(tmp_path, "sew_resnet18", SMALL)
    assert code == EXIT_OK
    assert tuple(nir.read(tmp_path / "model.nir").nodes["input"].input_type["input"]) == (3, 32, 32)


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("error:") == 1 and "Traceback" not in err, err
    return " ".join(err.split())


@pytest.mark.parametrize(("name", "kwargs", "named"), [
    ("sew_resnet18_and", {}, "layers.0.0.connect (Connect): connect function AND"),
    ("sew_resnet18", {"cnf": "IAND"}, "layers.0.0.connect (Connect): connect function IAND"),
    ("sew_resnet18", {"input_size": "imagenet"}, "pre.1.0 (MaxPool2d): NIR 1.0 has no max pooling"),
    ("spiking_resnet18", {"neuron_params": {"v_reset": None}}, "pre.0 (IFNode): soft reset"),
    ("spiking_resnet18", {"neuron": "liaf"}, "pre.0 (LIAFNode): NIR has IF and LIF neurons only"),
    ("ms_resnet18", {}, "layers.0.0 (MSBlock): only Spiking ResNet and SEW ResNet blocks"),
    (list_models("spikeformer*")[0], {}, "model (Spikeformer): only Spiking ResNet and SEW-ADD ResNet models"),
])
def test_what_nir_cannot_express_is_refused_naming_the_module(tmp_path, capsys, name, kwargs, named):
    code, _ = export(tmp_path, name, SMALL | kwargs)
    assert code == EXIT_BAD_INPUT
    line = error_line(capsys)
    assert f"cannot export {name!r} as nir: {named}" in line and "Instead:" in line
    assert not (tmp_path / "model.nir").exists()


def test_image_size_goes_with_nir_only(tmp_path, capsys):
    model = create_model("sew_resnet18", **SMALL)
    source = tmp_path / "model.pt"
    save_atomic({"model": model.state_dict(), "meta": {"model": "sew_resnet18", "kwargs": SMALL}}, source)
    assert main(["export", str(source), "--format", "snnbench", "--image-size", "8",
                 "--out", str(tmp_path / "x.pt")]) == EXIT_BAD_INPUT
    assert "--image-size goes with --format nir" in error_line(capsys)
    with pytest.raises(SystemExit) as exc:
        main(["export", str(source), "--format", "nir", "--image-size", "8x8", "--out", str(tmp_path / "x.nir")])
    assert exc.value.code == 2


def test_unwritable_out_is_bad_input(tmp_path, capsys):
    code, _ = export(tmp_path, "sew_resnet18", SMALL)
    assert code == EXIT_OK
    capsys.readouterr()
    source = tmp_path / "model.pt"
    assert main(["export", str(source), "--format", "nir", "--out", str(tmp_path / "no" / "x.nir")]) == EXIT_BAD_INPUT
    assert "cannot write --out" in error_line(capsys)
    assert main(["export", str(source), "--format", "nir", "--out", str(tmp_path)]) == EXIT_BAD_INPUT  # a folder
    assert "cannot write --out" in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nir", "model.pt"]  # no partial file left


def test_a_conv_not_zero_padded_is_refused():
    from bench.nir_export import NIRExportError, to_nir

    model = create_model("sew_resnet18", **SMALL)
    model.layers[0][1].branch[2][0].padding_mode = "reflect"
    with pytest.raises(NIRExportError, match=r"cannot export 'x' as nir: layers\.0\.1\.branch\.2\.0 \(Conv2d\): "
                       r"padding=\(1, 1\), padding_mode='reflect'"):
        to_nir(model, "x", (SIZE, SIZE))



def test_a_grouped_conv_is_refused_naming_it(tmp_path):
    """NIR 1.0's Conv2d types its input as ``weight.shape[1]`` channels (in_channels / groups): a grouped conv (here
    one swapped into a Spiking ResNet's first block) is refused, naming the module, before anything is written; it
    used to reach NIR's type inference and end in a bare ValueError."""
    from bench.nir_export import NIRExportError, write_nir

    model = create_model("spiking_resnet18", **SMALL)
    block = model.layers[0][0].branch
    conv = block[0][0]
    block[0][0] = torch.nn.Conv2d(conv.in_channels, conv.out_channels, 3, conv.stride, conv.padding, groups=2,
                                  bias=False)
    with pytest.raises(NIRExportError, match=r"layers\.0\.0\.branch\.0\.0 \(Conv2d\): groups=2.*groups=1"):
        write_nir(randomised(model), "spiking_resnet18", (SIZE, SIZE), tmp_path / "model.nir")
    assert not (tmp_path / "model.nir").exists()
