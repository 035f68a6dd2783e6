"""Spikeformer (Li, Lei & Yang 2022): parameter counts, shapes, state reset, and the blocks that define it."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron

from bench.models import create_model, model_info
from bench.models.common import MatMul
from bench.models.neurons import ParametricLIAFNode
from bench.models.spikeformer import (
    MultiHeadSelfAttention,
    SEWTokenizerBlock,
    make_neurons,
    tokenizer_channels,
)

NAMES = ("spikeformer_imagenet", "spikeformer_dvs_cifar10", "spikeformer_dvs_gesture")
IN_CHANNELS = {"spikeformer_imagenet": 3, "spikeformer_dvs_cifar10": 2, "spikeformer_dvs_gesture": 2}
CLASSES = {"spikeformer_imagenet": 1000, "spikeformer_dvs_cifar10": 10, "spikeformer_dvs_gesture": 11}


def tiny(name: str, **kwargs) -> nn.Module:
    """embed 32 (width 1/16 or 1/8), depth 2, 32 px, T=2."""
    args = {"width": 1 / 16 if name == "spikeformer_imagenet" else 1 / 8, "depth": 2, "img_size": 32, "T": 2,
            "drop_path_rate": 0.0, **kwargs}
    return create_model(name, **args)


def tiny_input(name: str, T: int = 2, B: int = 2, size: int = 32) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(T, B, IN_CHANNELS[name], size, size) * 2


# ---- parameter counts -------------------------------------------------------------------------

def sew_block_params(cin: int, cout: int, k: int, stride: int) -> int:
    """Two kxk convs (no bias) + BN + one PLIF weight each; shortcut 1x1 conv + BN + PLIF when reshaped."""
    p = cin * cout * k * k + 2 * cout + 1 + cout * cout * k * k + 2 * cout + 1
    if stride != 1 or cin != cout:
        p += cin * cout + 2 * cout + 1
    return p


def expected_params(cin: int, widths: list[int], strides: list[int], k: int, d: int, depth: int, ratio: int,
                    tokens: int, T: int, classes: int) -> int:
    tokenizer = sum(sew_block_params(a, b, k, s) for a, b, s in zip([cin, *widths[:-1]], widths, strides, strict=True))
    mhsa = 3 * d * d + d * d + d  # qkv without bias, proj with bias
    hidden = ratio * d
    block = 3 * 2 * d + 2 * mhsa + (d * d + d) + (d * hidden + hidden + hidden * d + d) + 1  # LNs, attns, fc, MLP
    return tokenizer + depth * block + tokens * d + T * d + 2 * d + (d + 1) + (d * classes + classes)


FULL = {
    # name: (worked-out count from the official layout, paper/README approximation, tokens per frame)
    "spikeformer_imagenet": (
        expected_params(3, [64, 64, 128, 128, 256, 256, 512, 512], [2, 1] * 4, 3, 512, 7, 3, 196, 4, 1000),
        39.3e6, 196),
    "spikeformer_dvs_cifar10": (
        expected_params(2, [64, 64, 128, 128, 256, 256], [2, 1] * 3, 3, 256, 7, 2, 256, 4, 10), 8.8e6, 256),
    "spikeformer_dvs_gesture": (
        expected_params(2, [64, 128, 256], [2, 2, 2], 5, 256, 7, 2, 256, 16, 11), 9.3e6, 256),
}


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_official_layout(name):
    with torch.device("meta"):  # shapes only: no weight initialisation cost
        model = create_model(name)
    exact, approx, tokens = FULL[name]
    n = sum(p.numel() for p in model.parameters())
    assert model.num_tokens == tokens
    assert n == exact
    assert abs(n - approx) / approx < 0.01


def test_worked_out_counts_are_the_expected_magnitudes():
    # Pins the helper itself: 39,320,836 / 8,792,993 / 9,279,900.
    assert [FULL[n][0] for n in NAMES] == [39_320_836, 8_792_993, 9_279_900]


def test_tokenizer_channel_layouts():
    assert tokenizer_channels(512, 8, "paired") == [64, 64, 128, 128, 256, 256, 512, 512]
    assert tokenizer_channels(256, 6, "paired") == [64, 64, 128, 128, 256, 256]
    assert tokenizer_channels(256, 3, "ramp") == [64, 128, 256]
    with pytest.raises(ValueError):
        tokenizer_channels(256, 3, "paired")


# ---- forward / backward / state ---------------------------------------------------------------

@pytest.mark.parametrize("attention", ["divided", "joint"])
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_tiny(name, attention):
    model = tiny(name, attention=attention)
    out = model(tiny_input(name))
    assert out.shape == (2, 2, CLASSES[name])
    assert torch.equal(out[0], out[1])  # one decision, repeated over T
    out.sum().backward()
    first_conv = model.tokenizer.blocks[0].residual[0][0]
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", NAMES)
def test_reset_net_makes_forwards_identical(name):
    model = tiny(name)
    x = tiny_input(name)
    with torch.no_grad():
        first = model(x)
        stale = model(x)  # neurons still hold the previous membrane
        functional.reset_net(model)
        again = model(x)
    assert torch.equal(first, again)
    assert not torch.equal(first, stale)


def test_class_count_and_input_validation():
    model = tiny("spikeformer_dvs_gesture", num_classes=5)
    assert model(tiny_input("spikeformer_dvs_gesture")).shape == (2, 2, 5)
    functional.reset_net(model)
    with pytest.raises(ValueError, match="T=2"):
        model(tiny_input("spikeformer_dvs_gesture", T=3))
    with pytest.raises(ValueError, match="tokens"):
        model(tiny_input("spikeformer_dvs_gesture", size=64))
    with pytest.raises(ValueError, match="divisible"):
        tiny("spikeformer_imagenet", img_size=30)
    with pytest.raises(ValueError, match="heads"):
        tiny("spikeformer_imagenet", embed_dim=36)


def test_cifar_input_size_keeps_first_block_at_stride_1():
    model = tiny("spikeformer_dvs_cifar10", input_size="cifar")
    assert model.tokenizer.blocks[0].stride == 1
    assert model.num_tokens == (32 // 4) ** 2  # strides 1,1,2,1,2,1
    assert tiny("spikeformer_dvs_cifar10").num_tokens == (32 // 8) ** 2
    with pytest.raises(ValueError):
        tiny("spikeformer_dvs_cifar10", input_size="mnist")


# ---- embeddings and initialisation ------------------------------------------------------------

def test_time_embedding_is_zero_at_init_and_trainable():
    model = tiny("spikeformer_dvs_cifar10")
    assert model.time_embed.shape == (2, 32)
    assert model.time_embed.requires_grad and torch.count_nonzero(model.time_embed) == 0
    assert model.pos_embed.shape == (model.num_tokens, 32) and model.pos_embed.std() > 0
    model(tiny_input("spikeformer_dvs_cifar10")).sum().backward()
    assert model.time_embed.grad.abs().sum() > 0
    torch.optim.SGD([model.time_embed], lr=1.0).step()
    assert torch.count_nonzero(model.time_embed) > 0


def test_temporal_fc_zero_init_rule():
    default = tiny("spikeformer_dvs_cifar10", depth=3)
    assert all(torch.count_nonzero(b.temporal_fc.weight) == 0 for b in default.blocks)  # official in effect
    intent = tiny("spikeformer_dvs_cifar10", depth=3, temporal_fc_init="after_first")
    assert torch.count_nonzero(intent.blocks[0].temporal_fc.weight) > 0
    assert all(torch.count_nonzero(b.temporal_fc.weight) == 0 for b in list(intent.blocks)[1:])
    assert all(torch.count_nonzero(b.temporal_fc.bias) == 0 for b in intent.blocks)
    joint = tiny("spikeformer_dvs_cifar10", attention="joint")
    assert not hasattr(joint.blocks[0], "temporal_fc")
    with pytest.raises(ValueError):
        tiny("spikeformer_dvs_cifar10", temporal_fc_init="none")


def test_zero_temporal_fc_makes_divided_block_ignore_temporal_attention():
    model = tiny("spikeformer_dvs_cifar10", depth=1)
    block = model.blocks[0]
    x = torch.randn(2, 2, 4, 32)
    ref = block.attn(block.norm1(x.reshape(4, 4, 32))).reshape(2, 2, 4, 32) + x
    ref = ref + block.mlp(block.norm2(ref))
    functional.reset_net(block)
    assert torch.allclose(block(x), ref, atol=1e-6)


# ---- neurons ----------------------------------------------------------------------------------

def neuron_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    outs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o.detach()))
             for m in model.modules() if isinstance(m, neuron.BaseNode)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return outs


def test_default_neurons_per_config():
    assert isinstance(tiny("spikeformer_imagenet").blocks[0].mlp.neuron, ParametricLIAFNode)
    for name in ("spikeformer_dvs_cifar10", "spikeformer_dvs_gesture"):
        node = tiny(name).blocks[0].mlp.neuron
        assert type(node) is neuron.ParametricLIFNode
        assert node.v_reset == 0.0 and node.v_threshold == 1.0 and node.detach_reset
        assert torch.isclose(1 / node.w.sigmoid(), torch.tensor(2.0))
        assert node.surrogate_function.alpha == 4.0


def test_plif_option_spikes_and_liaf_outputs_analog():
    x = tiny_input("spikeformer_imagenet")
    spiking = neuron_outputs(tiny("spikeformer_imagenet", neuron="plif"), x)
    assert len(spiking) > 0 and all(((o == 0) | (o == 1)).all() for o in spiking)
    assert any(o.sum() > 0 for o in spiking)
    for kind in ("pliaf", "liaf"):
        analog = neuron_outputs(tiny("spikeformer_imagenet", neuron=kind), x)
        assert all((o >= 0).all() for o in analog)
        assert any(((o != 0) & (o != 1)).any() for o in analog)  # analog, not spikes


def test_parametric_liaf_matches_hand_computation():
    # tau 2 -> k = sigmoid(w) = 0.5; h1 = 0.5; h2 = 0.5 + 0.5 (3 - 0.5) = 1.75 fires -> v = 0; h3 = 0.2.
    _, make = make_neurons("pliaf", None, None)
    node = make()
    x = torch.tensor([[1.0, -2.0], [3.0, 0.0], [0.4, 0.0]], requires_grad=True)
    y = node(x)
    assert torch.allclose(y, torch.tensor([[0.5, 0.0], [1.75, 0.0], [0.2, 0.0]]))
    y.sum().backward()
    # dL/dx: k + (1-k)k, k, k (the hard reset after step 2 cuts the path back). With k' = sigmoid'(0) = 0.25,
    # dh1/dw = 1 k', dh2/dw = (3 - 0.5) k' + (1-k) dh1/dw, dh3/dw = 0.4 k': total 0.25 + 0.75 + 0.1 = 1.1.
    assert torch.allclose(x.grad[:, 0], torch.tensor([0.75, 0.5, 0.5]))
    assert torch.allclose(node.w.grad, torch.tensor(1.1))
    functional.reset_net(node)
    assert torch.allclose(node(x.detach()[:1]), torch.tensor([[0.5, 0.0]]))  # fresh membrane after reset


def test_liaf_option_is_analog_in_multi_step_mode():
    # Same LIF dynamics at tau 2 as above, but a fixed tau: the multi-step output must equal the single steps.
    _, make = make_neurons("pliaf", "liaf", None)
    node = make()
    assert isinstance(node, neuron.LIAFNode) and not any(p.requires_grad for p in node.parameters())
    x = torch.tensor([[1.0, -2.0], [3.0, 0.0], [0.4, 0.0]])
    assert torch.allclose(node(x), torch.tensor([[0.5, 0.0], [1.75, 0.0], [0.2, 0.0]]))


def test_sew_tokenizer_block_shortcuts_and_multispikes():
    _, make = make_neurons("plif", None, None)
    same = SEWTokenizerBlock(8, 8, 3, 1, make)
    down = SEWTokenizerBlock(4, 8, 3, 2, make)
    assert isinstance(same.shortcut, nn.Identity)
    assert isinstance(down.shortcut[0][0], nn.AvgPool2d)
    assert not any(isinstance(m, nn.AvgPool2d) for m in SEWTokenizerBlock(4, 8, 3, 1, make).modules())
    x = (torch.rand(2, 2, 4, 8, 8) > 0.5).float() * 3
    out = down(x)
    assert out.shape == (2, 2, 8, 4, 4)
    assert set(out.unique().tolist()) <= {0.0, 1.0, 2.0}


# ---- attention products -----------------------------------------------------------------------

def record_matmuls(model: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: seen.append((n, i[0], i[1], o)))
             for n, m in model.named_modules() if isinstance(m, MatMul)]
    model(x)
    for h in hooks:
        h.remove()
    return seen


def test_matmul_modules_see_attention_operands_divided():
    model = tiny("spikeformer_dvs_cifar10", depth=1, heads=4)
    T, B, N, h = 2, 2, model.num_tokens, 4
    seen = record_matmuls(model, tiny_input("spikeformer_dvs_cifar10"))
    shapes = {n: (tuple(a.shape), tuple(b.shape)) for n, a, b, _ in seen}
    assert shapes == {
        "blocks.0.temporal_attn.qk": ((B * N, h, T, 8), (B * N, h, 8, T)),
        "blocks.0.temporal_attn.av": ((B * N, h, T, T), (B * N, h, T, 8)),
        "blocks.0.attn.qk": ((T * B, h, N, 8), (T * B, h, 8, N)),
        "blocks.0.attn.av": ((T * B, h, N, N), (T * B, h, N, 8)),
        "pool.matmul": ((B, 1, T * N), (B, T * N, 32)),
    }
    for name, a, b, out in seen:
        assert torch.allclose(out, a @ b)
        if name.endswith(".av") or name == "pool.matmul":
            assert torch.allclose(a.sum(-1), torch.ones(())), name  # softmax weights reach the product


def test_matmul_modules_see_attention_operands_joint():
    model = tiny("spikeformer_dvs_gesture", depth=1, attention="joint")
    seen = record_matmuls(model, tiny_input("spikeformer_dvs_gesture"))
    names = [n for n, *_ in seen]
    assert names == ["blocks.0.attn.qk", "blocks.0.attn.av", "pool.matmul"]
    assert seen[0][1].shape == (2, 4, 2 * model.num_tokens, 8)  # one sequence of N*T tokens per sample


def test_mhsa_equals_torch_reference():
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(16, 4)
    ref = nn.MultiheadAttention(16, 4, bias=False, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(attn.qkv.weight)
        ref.out_proj.weight.copy_(attn.proj.weight)
    attn.proj.bias.data.zero_()
    x = torch.randn(3, 5, 16)
    assert torch.allclose(attn(x), ref(x, x, x, need_weights=False)[0], atol=1e-5)


# ---- metadata ---------------------------------------------------------------------------------

def test_registry_metadata():
    for name in NAMES:
        info = model_info(name)
        assert info.family == "spikeformer" and not info.causal_over_T
        assert "softmax attention on real values" in info.non_spiking
        assert "LayerNorm and attention pooling on real values" in info.non_spiking
    imagenet = model_info("spikeformer_imagenet").non_spiking
    assert "LIAF analog outputs" in imagenet and "analog first conv (direct encoding)" in imagenet
    assert "LIAF analog outputs" not in model_info("spikeformer_dvs_cifar10").non_spiking
    assert model_info("spikeformer_dvs_gesture").default_T == 16
