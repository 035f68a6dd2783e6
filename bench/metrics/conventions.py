"""Counting conventions and energy profiles, as data: the single source every report renders from.

``bench.metrics.ops`` / ``ops_rules`` apply :data:`OPS_RULES`, ``bench.metrics.firing`` applies
:data:`FIRING_RULES`, ``bench.metrics.energy`` applies :data:`ENERGY_PROFILES`. Records carry
:data:`OPS_CONVENTION_ID` so a report (also of a past run) can print the rules that produced the numbers
with :func:`conventions_markdown`; nothing here is retyped elsewhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.metrics.hardware import HARDWARE_PROFILES

# v2: exact kinds in any dtype, BN after in-place changes, torch-function products; v3: the ANN equivalent is ONE
# inference (ann_macs), data-movement counts per layer, the energy model with data movement.
OPS_CONVENTION_ID = "snnbench-ops-v3"

# Input kinds, decided per call from the tensor itself (see bench.metrics.kinds).
INPUT_KINDS: dict[str, str] = {
    "binary": "values in {0, 1} (or a bool tensor): spikes.",
    "scaled": "values in {0, v} with a single nonzero magnitude v > 0 (e.g. DSR nodes' {0, v_th}): spikes "
              "whose amplitude is folded into the weights; each nonzero is one event.",
    "multispike": "non-negative integers with a maximum above 1 (e.g. SEW ADD sums of spike trains): an "
                  "input of value n is n events. Values above 65536 cannot be summed exactly on the device path "
                  "and are reported as an error.",
    "zero": "all zeros: spikes with no events (0 ACs, 0 MACs).",
    "analog": "anything else (negative, fractional, or several magnitudes): real-valued operands, counted "
              "as dense MACs, zeros included.",
}

# (topic, rule): applied by ops_rules.py; every per-layer count is a total over all T steps of one sample.
OPS_RULES: tuple[tuple[str, str], ...] = (
    ("Stem", "Each module is counted as the model runs it. SEW and Spiking ResNet run their analog stem "
             "(conv + BN) once on a static image and repeat its output over T, as the SEW authors' code does "
             "(stem_once='auto': checked exactly on every input; event frames run it every step), so its MACs "
             "are counted once per sample, not T times; stem_once=False counts them T times."),
    ("Unit", "All counts are per sample: the total over all T time steps of the forward pass, divided by the "
             "number of samples (batch size x batches). A row aggregates every call of its module."),
    ("Input kind", "Decided per call from the tensor, exactly (see input kinds): a negative value, NaN or "
                   "infinity: analog; all zeros: zero; every nonzero equal to the max v (the count of x == v "
                   "equals the count of nonzeros): binary (v = 1) or scaled; else v an integer above 1 and every "
                   "value an integer: multispike; else analog. Counts are integers in any dtype (float16 and "
                   "bfloat16 inputs are summed in float32 groups, then float64). On GPUs the statistics stay on "
                   "the device (one fused pass per tensor) and kinds are read once after the forward; on CPUs the "
                   "same decision is taken on the host with exact shortcuts (a 1/61 strided sample holding a "
                   "negative value, or a non-integer other than 0 and its max, proves a tensor analog). Neuron "
                   "outputs are classified once and reused by the layers reading them: a view is matched when it "
                   "covers the same elements (same start and count, same layout or both gap-free) and has not "
                   "been modified in place since (version counter)."),
    ("Conv / Linear, spike input", "ACs = sum over input elements of events(x) x reach, EXACTLY: reach[c, h, w] "
     "= number of (output position, output channel) pairs the element reaches, padding (zeros, reflect, "
     "replicate, circular), stride, dilation and groups respected. events(x) = 1 per nonzero for binary and "
     "scaled inputs, the value for multispike inputs. Linear: reach = out_features. Zero-padding taps cost "
     "nothing. Equals spikingjelly 2.0 SynOpCounter on binary inputs. torch.conv1d/2d/3d and F.linear called "
     "in a forward outside counted modules are counted by the same rules (F.linear(x, w) as x @ w.T)."),
    ("Conv / Linear, analog input", "MACs = dense MACs of that call (zeros included)."),
    ("Dense MACs", "Every MAC a dense ANN of the same shapes does over the T steps the model runs each layer "
                   "(the T-step total, like every count; a stem run once counts once) = output elements x "
                   "(in_channels / groups) x kernel size (conv), output elements x in_features (linear), "
                   "b x n x k x m (matmul); bias adds excluded. Matches fvcore's conv/linear counts."),
    ("ANN MACs (one inference)", "ann_macs: the dense MACs of ONE inference of the same-shape ANN, per layer: each "
     "call's dense MACs divided by the time steps it covers, read from its output's leading dims: [T*B, ...] and "
     "[T, B, ...] cover T steps, [B, ...] (a stem run once on the static image) one. Any other layout (time "
     "folded into a token axis, as in temporal or joint space-time attention) is counted whole, with a note "
     "on the layer. A module called once per step in single-step mode ([B, ...] input, T calls) counts T "
     "inferences there (none of our models does this). The ANN-equivalent energy uses ann_macs."),
    ("Data-movement counts", "Per layer, for the energy model with data movement (all T-step totals except the "
     "ann_* ones, which are one inference): in_events (events of spike inputs read), spike_in_elems / "
     "analog_in_elems (input elements by kind; norms read theirs as analog), out_elems, out_events and "
     "spike_out_elems (neuron outputs: events and spike elements, from the firing pass's classification), "
     "weight_passes (weight elements x sample-steps of analog-input conv/linear calls) and ann_weight_passes, "
     "ann_in_elems, ann_out_elems. They never change the counts above."),
    ("SOPs", "Synaptic operations = the ACs of event-driven synaptic products (conv, linear, MatMul with a "
             "spike operand). ACs additionally include avg-pooling additions; SOPs do not."),
    ("Bias", "Bias adds are not counted (neither ACs nor MACs nor dense MACs): one add per output element, "
             "negligible against the fan-in, and the same for a folded BN's shift."),
    ("BatchNorm", "fold_bn=True (default): a BN whose input is the live, unmodified output of a conv/linear "
                  "is folded into it (0 ops, row noted 'folded into <layer>'). Other BNs (after adds, in place "
                  "as in y = conv(x); y += x, pre-activation, or fold_bn=False): 1 MAC per element "
                  "(y = a x + b with precomputed a, b), also in dense MACs."),
    ("LayerNorm / GroupNorm", "Not foldable: 3 MACs per element with affine, 2 without (statistics, "
                              "normalisation, affine); also in dense MACs. fvcore uses a rough 5 per element."),
    ("MatMul (attention)", "Through bench.models.common.MatMul, or a torch function computing a product "
     "(matmul / @, mm, bmm, mv, addmm, baddbmm, addmv) called outside counted modules (row '<module>:<function>'). "
     "Both operands spikes: ACs = number of nonzero "
     "products, sum over (i, k, j) of events(a_ik) x events(b_kj) (computed exactly as sum_k colsum(a)_k x "
     "rowsum(b)_k). One spike operand: ACs = its events x the other operand's free dimension (each event adds "
     "one row/column of real values). Both analog (e.g. softmax attention): MACs = dense."),
    ("Avg pooling", "Counted as ACs (additions, no weights), not SOPs: sum over input elements of events(x) x "
                    "reach (spike input) or of reach (analog input), reach = number of windows covering the "
                    "element; the 1/k scale is folded into the next layer and not counted. Not in dense MACs."),
    ("Max pooling", "Comparisons listed in 'cmps' = (input, window) pairs - outputs; not costed and not SOPs."),
    ("Neurons", "neuron_updates = one per neuron per time step (output elements), a separate column, never "
                "mixed into ACs/MACs; an energy profile may price them (neuron_update_pj)."),
    ("Approximate SOPs", "Literature formula beside the exact count, per spike-input conv/linear/MatMul: "
     "approx_sops = r_in x T x dense MACs per step = r_in x dense MACs, r_in = events(x) / numel(x) of that "
     "layer's input (its mean firing rate; for a MatMul of two spike operands the product of both rates). "
     "approx_sops_error = approx_sops / sops - 1 over the whole model."),
    ("Not counted", "Element-wise nonlinearities and arithmetic (softmax, ReLU, GELU, residual adds, scaling, "
                    "embeddings added in a forward), reshapes, dropout. Modules present but excluded this way are "
                    "listed under 'excluded'."),
    ("Uncounted", "A called leaf module with parameters, or a known compute module (e.g. ConvTranspose, "
                  "MultiheadAttention), without a rule is listed under 'uncounted' (strict=True raises); its row "
                  "shows no numbers, never 0, and totals are marked incomplete. So is a torch function computing "
                  "products without a clear rule (einsum, tensordot, conv_transpose, scaled_dot_product_attention, "
                  "bilinear, kron, ...) called outside counted modules: '<function> (torch function call)' under "
                  "the module that called it. Non-leaf modules with their own parameters (e.g. positional "
                  "embeddings) are listed under 'unverified': products they compute with torch functions are "
                  "counted or listed as above, element-wise arithmetic is not counted."),
    ("Mode", "The model runs in eval mode under torch.no_grad and outside inference mode (so every tensor has "
             "a version counter and in-place changes are seen), after functional.reset_net, once per batch; "
             "training flags are restored afterwards. Torch functions are watched (a TorchFunctionMode) only "
             "outside counted modules, so calls inside nn.Linear, Conv2d or MatMul are never counted twice."),
)

FIRING_RULES: tuple[tuple[str, str], ...] = (
    ("Neurons", "Modules that are spikingjelly BaseNode subclasses, DSRIFNode / DSRLIFNode, or a user-given "
                "class; outputs must be multi-step [T, ...]."),
    ("Rate", "Per layer and time step t: events at t / neurons, averaged over the batch; an event is a nonzero "
             "output (so {0, v_th} scaled spikes count one per nonzero). Event counts are exact integers in "
             "any dtype (float16 and bfloat16 outputs included)."),
    ("Analog layers", "A neuron whose output is not {0, v} (e.g. LIAF: ReLU of the membrane) is flagged "
                      "analog; its 'rate' is the fraction of nonzero outputs and it is excluded from the "
                      "network mean rate."),
    ("Silent / saturated", "Over the whole window of T steps, per sample and neuron: silent = no event at any "
                           "step, saturated = an event at every step; fractions of (sample, neuron) pairs."),
    ("Network mean", "Mean over spiking (non-analog) layers weighted by neuron count = all events / all "
                     "neuron-steps."),
    ("Data", "The runner's plug-in uses the case's fixed sample batch (ctx.sample_batch()) unless "
             "num_batches > 1; the same pass gives the op counts."),
    ("Untrained models", "A model without a trained checkpoint is measured after its BatchNorm statistics are set "
                         "from data.bn_calibration_samples evaluation samples (the record's model.weights says so); "
                         "its rates show the cost structure of the architecture, not those of a trained net, and "
                         "records carry 'untrained_warning'."),
)


@dataclass(frozen=True)
class EnergyProfile:
    """Per-operation energy costs in picojoules, with the source they come from."""

    name: str
    mac_pj: float
    ac_pj: float
    source: str
    neuron_update_pj: float | None = None
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


HOROWITZ_2014 = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, "
                 "45 nm process, Table of arithmetic energies")

ENERGY_PROFILES: dict[str, EnergyProfile] = {
    "45nm-fp32": EnergyProfile("45nm-fp32", 4.6, 0.9, HOROWITZ_2014,
                               notes="fp32: MAC = mult 3.7 + add 0.9 pJ; AC = fp32 add 0.9 pJ"),
    "45nm-fp16": EnergyProfile("45nm-fp16", 1.5, 0.4, HOROWITZ_2014,
                               notes="fp16: MAC = mult 1.1 + add 0.4 pJ; AC = fp16 add 0.4 pJ"),
    "45nm-int8": EnergyProfile("45nm-int8", 0.23, 0.03, HOROWITZ_2014,
                               notes="int8: MAC = mult 0.2 + add 0.03 pJ; AC = int8 add 0.03 pJ"),
}

ENERGY_RULES: tuple[tuple[str, str], ...] = (
    ("SNN energy", "E = MACs x mac_pj + ACs x ac_pj (+ neuron_updates x neuron_update_pj when the profile "
                   "prices neuron updates), per sample, compute only (no memory access)."),
    ("ANN-equivalent", "E_ANN = ann MACs x mac_pj, ann MACs = the dense MACs of ONE inference of a same-shape ANN "
                       "(not the T-step total dense_macs); ann_over_snn = E_ANN / E (above 1: the SNN is cheaper)."),
    ("Literature figure", "E_lit = MACs x mac_pj + approx SOPs x ac_pj: the usual paper formula, for comparison."),
    ("Not priced", "Max-pool comparisons, element-wise ops, memory access. The optional spikingjelly "
                   "SimpleEnergyProfiler figure (energy option memory_aware) adds parameter and neuron-state "
                   "memory traffic at 24.96 pJ/byte (its own counting rules, not ours)."),
)


# The energy model with data movement (bench.metrics.energy_model), as data.
ENERGY_MODEL_RULES: tuple[tuple[str, str], ...] = (
    ("Scope", "Per sample, picojoules, from the probe's exact per-layer counts and the firing report's mean rate "
              "(no second pass). The SNN over its T steps; its ANN equivalent: ONE inference of the same-shape "
              "ANN with dense activations. Batch-1 inference: no weight reuse across samples."),
    ("SNN compute", "Digital profiles: MACs x (mult(activation_bits x weight_bits) + add(membrane_bits)) + ACs x "
     "add(membrane_bits) + neuron updates x (the profile's neuron_update_pj, else 2 adds at membrane_bits: "
     "integrate/leak and threshold). Integer costs scale from the profile's ref_bits: adds linearly, multiplies "
     "with the product of the operand widths."),
    ("SNN weights", "Spike-input (event-driven) layers read SOPs / event_weight_reuse weights (default 1: one "
     "weight per SOP, no reuse: each event fetches the weights it reaches; above 1, one read serves that many "
     "synaptic ops, e.g. a weight held in a register across the T steps or a tile's events). Kept linear in the "
     "SOPs (no floor of one read per weight), so above 1 the reads may fall below one per weight at low rates: an "
     "optimistic bound. Neuromorphic profiles are unaffected (their sop_pj includes the weight read). "
     "Analog-input (dense) layers read max(MACs / dense_weight_reuse, weight passes): "
     "one read per dense_weight_reuse output positions (the output tile), at least once per sample and step."),
    ("Membrane", "One read and one write of membrane_bits per neuron per step; synaptic currents accumulate in "
                 "the neuron's accumulator (synaptic layers' outputs are not written to memory)."),
    ("Spikes", "spike_format = address (default): one address event of spike_address_bits per output spike "
               "written and per input event read by each spike-input layer (a multispike input of value n is n "
               "events). bitmap: 1 bit per neuron and step written, 1 bit per spike-input element read."),
    ("Activations", "The SNN's real-valued inputs (the image, attention scores, norms' inputs) read at "
                    "activation_bits; analog neuron outputs (LIAF) written at activation_bits."),
    ("Neuromorphic profiles", "ACs x sop_pj (weight read and accumulate included; avg-pool additions priced as "
     "synaptic ops), neuron updates x neuron_update_pj (membrane traffic included), output spikes x spike_pj; "
     "MAC layers, their weights and real-valued data, and the whole ANN equivalent on the profile's digital "
     "reference profile."),
    ("ANN equivalent", "ann MACs x (mult(ANN activation bits x weight_bits) + add(membrane_bits)); weights "
     "max(ann MACs / dense_weight_reuse, one read per weight) for layers with weights; every layer's input "
     "elements read and output elements written once at the ANN activation width (activation_bits, or "
     "ceil(log2(T+1)) with ann_bits_from_T, Yan et al.'s equivalent QNN). ReLU and BN fused, pooling "
     "additions not priced."),
    ("Memory pricing", "Per bit: a memory's energy per access / its access width (data assumed packed). No cache "
     "or DRAM hierarchy beyond the profile's memories, no control logic, no leakage, no address computation, "
     "no spike routing beyond spike_pj."),
    ("Break-even rate", "E_snn(r) = fixed + slope x r: every event-driven count (SOPs and their weight reads, "
     "avg-pool additions on spikes, address events) scaled in proportion to the network mean firing rate r, the "
     "rest fixed; slope = event part / measured mean rate. break_even_rate solves E_snn(r) = E_ann; None (with "
     "why) when the fixed part already reaches the ANN, with no spiking layer, or with no events measured."),
)


def _table(title: str, rules: tuple[tuple[str, str], ...]) -> list[str]:
    return [f"### {title}", "", *[f"- **{topic}**: {text}" for topic, text in rules], ""]


def conventions_markdown() -> str:
    """The counting conventions and energy profiles as Markdown, for every report."""
    lines = [f"## Counting conventions ({OPS_CONVENTION_ID})", ""]
    lines += ["### Input kinds", "", *[f"- **{k}**: {v}" for k, v in INPUT_KINDS.items()], ""]
    lines += _table("Operation counts", OPS_RULES)
    lines += _table("Firing rates", FIRING_RULES)
    lines += _table("Energy", ENERGY_RULES)
    lines += _table("Energy with data movement", ENERGY_MODEL_RULES)
    lines += ["| profile | MAC (pJ) | AC (pJ) | neuron update (pJ) | source |", "|---|---|---|---|---|"]
    for p in ENERGY_PROFILES.values():
        upd = "not priced" if p.neuron_update_pj is None else f"{p.neuron_update_pj:g}"
        lines.append(f"| {p.name} | {p.mac_pj:g} | {p.ac_pj:g} | {upd} | {p.source}; {p.notes} |")
    lines += ["", "| hardware profile | kind | costs | source |", "|---|---|---|---|"]
    for name, hp in HARDWARE_PROFILES.items():
        d = hp.as_dict()
        costs = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in d.items()
                          if k not in ("name", "kind", "source", "notes"))
        lines.append(f"| {name} | {hp.kind} | {costs} | {hp.source}; {hp.notes} |")
    return "\n".join(lines) + "\n"


def conventions_dict() -> dict[str, Any]:
    """The same content as plain data (JSON-serialisable)."""
    return {
        "id": OPS_CONVENTION_ID,
        "input_kinds": dict(INPUT_KINDS),
        "ops": dict(OPS_RULES),
        "firing": dict(FIRING_RULES),
        "energy": dict(ENERGY_RULES),
        "energy_model": dict(ENERGY_MODEL_RULES),
        "profiles": {k: p.as_dict() for k, p in ENERGY_PROFILES.items()},
        "hardware_profiles": {k: p.as_dict() for k, p in HARDWARE_PROFILES.items()},
    }
