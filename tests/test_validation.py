"""Every bad input refused before it costs a run: kwargs, labels, names, seeds, devices, sizes, folders, imports."""

from __future__ import annotations

import os
import time

import pytest
import torch

from bench.build import MemoryNeed, memory_profile
from bench.cli import main
from bench.models.registry import KwargError, check_kwargs, model_info
from bench.suite import SuiteError, load_suite
from bench.train.checkpointing import checkpoint_paths

BASE = """
[suite]
name = "valid"
time_steps = [1]
metrics = ["params"]

[data]
dataset = "digits"
max_samples = 8
batch_size = 8

[[models]]
name = "{name}"
label = "m"
kwargs = {{ {kwargs} }}
"""


def suite_error(write_suite, text: str, **load) -> SuiteError:
    path = write_suite(text)
    with pytest.raises(SuiteError) as info:
        load_suite(path, **load)
    assert info.value.file == str(path) and info.value.fix
    return info.value


# ---------------------------------------------------------------- 4. model kwargs


@pytest.mark.parametrize("name, kwargs, field, words", [
    ("sew_resnet18", "widht = 0.125", "models[0].kwargs.widht", "did you mean 'width'?"),
    ("sew_resnet18", "width = -1.0", "models[0].kwargs.width", "> 0"),
    ("sew_resnet18", "width = 0.0", "models[0].kwargs.width", "> 0"),
    ("sew_resnet18", 'width = "wide"', "models[0].kwargs.width", "expected float"),
    ("sew_resnet18", 'cnf = "XOR"', "models[0].kwargs", "cnf must be one of"),
    ("ms_resnet18", 'neuron = "quantum"', "models[0].kwargs.neuron", "dsr_lif"),
    ("spiking_resnet18", 'neuron = "lif", neuron_params = { tauu = 2.0 }', "models[0].kwargs.neuron_params.tauu",
     "no parameter 'tauu'"),
    ("spiking_resnet18", 'neuron = "lif", neuron_params = { tau = 0.5 }', "models[0].kwargs", "tau > 1"),
    ("danet_a50", 'proj = "nope"', "models[0].kwargs", "proj must be one of"),
    ("dsr_vgg11", "T = 4", "models[0].kwargs.T", "time_steps"),
    ("dsr_vgg11", 'neuron = "lif"', "models[0].kwargs", "DSR nets need a DSR neuron"),
    ("spikeformer_dvs_cifar10", "num_classes = 0", "models[0].kwargs.num_classes", ">= 1"),
    ("toy_models:tiny_snn", "widht = 1", "models[0].kwargs.widht", "image_size, in_channels, num_classes"),
])
def test_bad_kwargs_are_refused_naming_the_field(write_suite, name, kwargs, field, words):
    err = suite_error(write_suite, BASE.format(name=name, kwargs=kwargs))
    assert err.field == field and words in err.problem + err.fix, (err.field, err.problem, err.fix)


def test_good_kwargs_load_and_a_typo_costs_no_run(write_suite, tmp_path, capsys):
    assert load_suite(write_suite(BASE.format(name="sew_resnet18", kwargs='width = 0.125, cnf = "IAND"')))
    started = time.monotonic()
    assert main(["run", str(write_suite(BASE.format(name="sew_resnet18", kwargs="widht = 0.125"))),
                 "--out", str(tmp_path / "r"), "-q"]) == 2
    assert time.monotonic() - started < 30 and not (tmp_path / "r").exists(), "refused before anything ran"
    assert "models[0].kwargs.widht" in capsys.readouterr().err


def test_check_kwargs_builds_nothing_real():
    # A 1000-class SEW-ResNet-152 at width 64 would need hundreds of GB; the meta build allocates nothing.
    check_kwargs(model_info("sew_resnet152"), {"width": 64.0})
    with pytest.raises(KwargError) as info:
        check_kwargs(model_info("sew_resnet152"), {"width": 64.5})
    assert info.value.key == "width"


@pytest.mark.parametrize("options, field", [
    ("options = { num_clases = 3 }", "data.options.num_clases"),
    ("options = { num_classes = 0 }", "data.options.num_classes"),
])
def test_unknown_or_bad_data_options(write_suite, options, field):
    text = BASE.format(name="toy_models:tiny_snn", kwargs="").replace('dataset = "digits"',
                                                                       f'dataset = "synthetic"\n{options}')
    assert suite_error(write_suite, text).field == field
    digits = BASE.format(name="toy_models:tiny_snn", kwargs="").replace('dataset = "digits"',
                                                                        'dataset = "digits"\noptions = { mean = 1 }')
    assert suite_error(write_suite, digits).field == "data.options.mean"


# ---------------------------------------------------------------- 5 and 7. labels, names, seeds, devices, folders


def test_labels_that_cannot_name_a_file_are_refused(write_suite):
    text = BASE.format(name="toy_models:tiny_snn", kwargs="")
    err = suite_error(write_suite, text.replace('label = "m"', f'label = "{"x" * 300}"'))
    assert err.field == "models[0].label" and "100" in err.fix
    err = suite_error(write_suite, text.replace('label = "m"', 'label = "a\\nb"'))
    assert err.field == "models[0].label"
    final, last = checkpoint_paths("run", "é" * 100)  # the longest label allowed, all escaped
    assert len(last.name.encode()) + len(".tmp") < 255


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "x" * 101])
def test_suite_names_that_leave_reports_are_refused(write_suite, name):
    text = BASE.format(name="toy_models:tiny_snn", kwargs="").replace('name = "valid"', f'name = "{name}"')
    assert suite_error(write_suite, text).field == "suite.name"


def test_seeds_are_bounded_to_what_torch_and_numpy_take(write_suite):
    text = BASE.format(name="toy_models:tiny_snn", kwargs="")
    for seed in (99999999999999999999, 2**32, -1):
        assert suite_error(write_suite, text.replace("[suite]", f"[suite]\nseed = {seed}")).field == "suite.seed"
    assert load_suite(write_suite(text.replace("[suite]", f"[suite]\nseed = {2**32 - 1}"))).seed == 2**32 - 1
    torch.manual_seed(2**32 - 1)  # the bound is one torch takes
    train = text + "\n[train]\nseed = 99999999999999999999\n"
    from bench.train.config import train_plan

    with pytest.raises(SuiteError) as info:
        train_plan(load_suite(write_suite(train, "train.toml")))
    assert info.value.field == "train.seed"


def test_a_suite_with_no_present_device_is_refused_clearly(write_suite, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    text = BASE.format(name="toy_models:tiny_snn", kwargs="").replace("[suite]", '[suite]\ndevices = ["cuda:0"]')
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "suite.devices" in err and "cuda:0 skipped" in err and "not a run folder" not in err
    assert not (tmp_path / "r").exists()


def test_output_folders_that_cannot_be_written_are_refused(write_suite, tmp_path, capsys):
    suite = str(write_suite(BASE.format(name="toy_models:tiny_snn", kwargs="")))
    (tmp_path / "file").write_text("")
    assert main(["run", suite, "--out", str(tmp_path / "file" / "r"), "-q"]) == 2
    assert "cannot create the output folder" in capsys.readouterr().err
    assert main(["run", suite, "--out", str(tmp_path / ("x" * 300)), "-q"]) == 2
    assert "cannot create the output folder" in capsys.readouterr().err
    assert main(["run", suite, "--out", str(tmp_path / "/".join(["y" * 200] * 25)), "-q"]) == 2
    assert "too long a path" in capsys.readouterr().err


def _read_only_folder(tmp_path):
    """A folder this process cannot write: a 0o500 folder, or (as root, who writes anyway) /sys/kernel."""
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o500)
        return folder
    try:
        (open("/sys/kernel/.snnbench-probe", "w")).close()
    except OSError:
        return "/sys/kernel"
    pytest.skip("no folder here refuses writes to root")


def test_a_read_only_output_folder_is_refused(write_suite, tmp_path, capsys):
    folder = _read_only_folder(tmp_path)
    suite = str(write_suite(BASE.format(name="toy_models:tiny_snn", kwargs="")))
    assert main(["run", suite, "--out", str(folder), "-q"]) == 2
    assert "writable --out" in " ".join(capsys.readouterr().err.split())


# ---------------------------------------------------------------- 6. sizes that exhaust memory


def test_memory_profile_against_hand_counts():
    # tiny_snn at 1x8x8: Flatten (64 floats) -> Linear 64->16 -> IF -> Linear 16->10.
    profile = memory_profile("toy_models:tiny_snn", {}, (1, 8, 8))
    assert profile.params == (64 * 16 + 16 + 16 * 10 + 10) * 4
    assert profile.input_per_step_sample == 64 * 4 and profile.activation_per_step_sample == 64 * 4
    need = profile.need(T=3, batch=5)
    assert need == MemoryNeed(4840, 64 * 4 * 15, 64 * 4 * 15) and need.total == 4840 + 3840
    # SEW-ResNet-50 at 224 px: the stem conv's 64x112x112 output and layer1's 256x56x56 are the largest.
    sew = memory_profile("sew_resnet50", {}, (3, 224, 224))
    assert sew.activation_per_step_sample == 64 * 112 * 112 * 4
    assert sew.params >= 25_557_032 * 4  # torchvision's ResNet-50 count, plus BN buffers


def test_an_image_size_that_cannot_fit_is_refused_before_loading(write_suite, tmp_path, capsys):
    text = BASE.format(name="toy_models:tiny_snn", kwargs="").replace("batch_size = 8", "batch_size = 8\nimage_size = 4096")
    started = time.monotonic()
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert time.monotonic() - started < 30, "refused from the declared size, not after a 30 GB allocation"
    assert "data.image_size" in err and "28.13 GiB" in err  # 450 test images x 4096^2 x 4 bytes, plus labels


def test_a_time_step_count_that_cannot_fit_is_refused(write_suite, tmp_path, capsys):
    text = (BASE.format(name="sew_resnet18", kwargs="").replace("time_steps = [1]", "time_steps = [10000]")
            .replace('dataset = "digits"', 'dataset = "synthetic"\nimage_size = 224').replace("max_samples = 8", "max_samples = 64")
            .replace("batch_size = 8", "batch_size = 64"))
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "suite.time_steps, data.batch_size, data.image_size" in err
    assert "input batch 358.89 GiB" in err  # 10000 x 64 x 3 x 224 x 224 x 4 bytes


# ---------------------------------------------------------------- 14. --no-import


@pytest.mark.parametrize("text, field", [
    (BASE.format(name="os:system", kwargs='command = "touch pwned"'), "models[0].name"),
    (BASE.format(name="no_such_module_at_all:f", kwargs=""), "models[0].name"),
    (BASE.format(name="sew_resnet18", kwargs="width = 0.125").replace('metrics = ["params"]', 'metrics = ["firing"]')
     + '\n[metrics.firing]\nneuron_types = ["os:system"]\n', "metrics.firing.neuron_types[0]"),
])
def test_no_import_refuses_code_before_importing_it(write_suite, tmp_path, text, field, capsys):
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q", "--no-import"]) == 2
    err = capsys.readouterr().err
    assert field in err and "--no-import" in err and "cannot import" not in err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "r").exists()


def test_no_import_runs_a_suite_of_registered_parts(write_suite, tmp_path):
    text = BASE.format(name="sew_resnet18", kwargs="width = 0.125")
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q", "--no-import"]) == 0


# ---------------------------------------------------------------- issue 19: non-finite kwargs, limits out of range


@pytest.mark.parametrize("kwargs, field", [
    ('neuron = "lif", neuron_params = { v_threshold = nan }', "models[0].kwargs.neuron_params.v_threshold"),
    ('neuron = "lif", neuron_params = { v_threshold = inf }', "models[0].kwargs.neuron_params.v_threshold"),
    ('neuron = "lif", neuron_params = { tau = -inf }', "models[0].kwargs.neuron_params.tau"),
    ("width = nan", "models[0].kwargs.width"),
    ("extra = { a = [1.0, { b = nan }] }", "models[0].kwargs.extra.a[1].b"),
])
def test_non_finite_kwargs_at_any_depth_are_refused(write_suite, kwargs, field):
    err = suite_error(write_suite, BASE.format(name="spiking_resnet18", kwargs=kwargs))
    assert err.field == field and "finite" in err.problem, (err.field, err.problem)


def test_non_finite_kwargs_cost_no_run(write_suite, tmp_path, capsys):
    text = BASE.format(name="spiking_resnet18", kwargs='neuron = "lif", neuron_params = { v_threshold = nan }')
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q"]) == 2
    assert "models[0].kwargs.neuron_params.v_threshold" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("key, value", [
    ("case_timeout_s", "1e-300"), ("case_timeout_s", "1e300"), ("case_timeout_s", "1e20"), ("case_timeout_s", "nan"),
    ("memory_limit_gib", "1e300"), ("memory_limit_gib", "1e-300"),
])
def test_limits_out_of_range_are_refused_naming_the_range(write_suite, tmp_path, capsys, key, value):
    text = BASE.format(name="toy_models:tiny_snn", kwargs="").replace('metrics = ["params"]',
                                                                    f'metrics = ["params"]\n{key} = {value}')
    err = suite_error(write_suite, text)
    assert err.field == f"suite.{key}" and "between" in err.fix, (err.field, err.problem, err.fix)
    assert main(["run", str(write_suite(text)), "--out", str(tmp_path / "r"), "-q"]) == 2
    assert f"suite.{key}" in capsys.readouterr().err


def test_limits_in_range_load(write_suite):
    text = BASE.format(name="toy_models:tiny_snn", kwargs="").replace(
        'metrics = ["params"]', 'metrics = ["params"]\ncase_timeout_s = 0.001\nmemory_limit_gib = 4096')
    suite = load_suite(write_suite(text))
    assert suite.case_timeout_s == 0.001 and suite.memory_limit_gib == 4096


def test_meta_builds_skip_random_init_and_import_no_compiler():
    """Suite checks build every registered model on the meta device (``build_on_meta``): shapes only, the random
    initialisers skipped (on meta, ``normal_`` reaches torch's Python references, whose decorator imports
    torch._dynamo and Triton, about a second). A fresh interpreter checks that no such import happens."""
    import subprocess
    import sys

    code = """
import sys
from bench.models import list_models
from bench.models.registry import build_on_meta, model_info
for name in list_models():
    kwargs = {"T": 2} if model_info(name).fixed_T else {}
    model = build_on_meta(name, num_classes=10, input_size="cifar", **kwargs)
    assert all(p.is_meta for p in model.parameters()), name
assert "torch._dynamo" not in sys.modules, "torch._dynamo imported"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_meta_forwards_import_no_compiler():
    """The memory bound and the time estimate run a meta-device forward of each model (``memory_profile``,
    ``model_work``): there, torch's Python references (batch_norm, elementwise ops, ...) and spikingjelly's
    IF/LIF/PLIF ops would import torch._dynamo and Triton (about a second of every dry run); bench.meta_shapes
    answers them by shape. A fresh interpreter runs both on every registered model and checks no such import."""
    import subprocess
    import sys

    code = """
import sys
from bench.build import memory_profile
from bench.estimate import Work, model_work
from bench.models import list_models
from bench.models.registry import model_info
for name in list_models():
    kwargs = {"num_classes": 10, "in_channels": 3, "input_size": "cifar", **({"T": 1} if model_info(name).fixed_T else {})}
    assert memory_profile(name, kwargs, (3, 32, 32)).activation_per_step_sample, name
    assert isinstance(model_work(name, kwargs, (3, 32, 32)), Work), name
    assert "torch._dynamo" not in sys.modules and "triton" not in sys.modules, f"torch._dynamo imported by {name}"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
