"""Suite validation (file, field, fix) and case expansion."""

from __future__ import annotations

import pytest

from bench.suite import SuiteError, expand_cases, load_suite


def test_valid_suite_loads(write_suite, tiny_suite_text):
    suite = load_suite(write_suite(tiny_suite_text))
    assert suite.name == "tiny"
    assert suite.time_steps == (1, 2)
    assert suite.data.batch_sizes == (20,)
    assert [m.label for m in suite.models] == ["tiny"]


def _error(write_suite, text: str) -> SuiteError:
    path = write_suite(text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    err = info.value
    assert err.file == str(path), "the error must name the file"
    assert str(path) in str(err) and "fix:" in str(err)
    return err


def test_toml_syntax_error(write_suite):
    err = _error(write_suite, "[suite]\nname = \n")
    assert err.field == "(syntax)"
    assert "line" in err.problem


def test_unknown_key_suggests_the_nearest(write_suite, tiny_suite_text):
    err = _error(write_suite, tiny_suite_text.replace("seed = 0", "sed = 0"))
    assert err.field == "suite.sed"
    assert "'seed'" in err.fix


def test_wrong_type(write_suite, tiny_suite_text):
    err = _error(write_suite, tiny_suite_text.replace("seed = 0", 'seed = "zero"'))
    assert err.field == "suite.seed"
    assert "integer" in err.problem


def test_unknown_model_suggests_nearest_name(write_suite, tiny_suite_text):
    text = tiny_suite_text.replace('name = "toy_models:tiny_snn"', 'name = "spiking_resnet1"')
    err = _error(write_suite, text)
    assert err.field == "models[0].name"
    assert "did you mean" in err.problem and "'spiking_resnet18'" in err.problem


def test_import_path_that_does_not_import(write_suite, tiny_suite_text):
    err = _error(write_suite, tiny_suite_text.replace("toy_models:tiny_snn", "no_such_pkg.mod:f"))
    assert err.field == "models[0].name"
    assert "no_such_pkg.mod" in err.problem


def test_empty_model_list(write_suite, tiny_suite_text):
    # A top-level key must come before the first table.
    text = "models = []\n" + tiny_suite_text.split("[[models]]")[0]
    err = _error(write_suite, text)
    assert err.field == "models"
    assert "no models" in err.problem


def test_negative_time_step(write_suite, tiny_suite_text):
    err = _error(write_suite, tiny_suite_text.replace("time_steps = [1, 2]", "time_steps = [4, -1]"))
    assert err.field == "suite.time_steps[1]"
    assert "-1" in err.problem


def test_unknown_metric(write_suite, tiny_suite_text):
    err = _error(write_suite, tiny_suite_text.replace('"params"]', '"parms"]'))
    assert err.field == "suite.metrics[1]"
    assert "'params'" in err.fix


def test_unknown_dataset(write_suite, tiny_suite_text):
    err = _error(write_suite, tiny_suite_text.replace('dataset = "digits"', 'dataset = "mnist"'))
    assert err.field == "data.dataset"


def test_bad_device(write_suite, tiny_suite_text):
    err = _error(write_suite, tiny_suite_text.replace('devices = ["cpu"]', 'devices = ["tpu"]'))
    assert err.field == "suite.devices[0]"


def test_missing_file(tmp_path):
    with pytest.raises(SuiteError) as info:
        load_suite(tmp_path / "nope.toml")
    assert "no such file" in str(info.value)


def test_case_expansion_is_the_full_product(write_suite, tiny_suite_text):
    text = (tiny_suite_text.replace("batch_size = 20", "batch_size = [8, 16]")
            + '\n[[models]]\nname = "toy_models:tiny_snn"\nlabel = "tiny-b"\ntime_steps = [4]\n')
    suite = load_suite(write_suite(text))
    cases, notes = expand_cases(suite)
    assert notes == []
    got = [(c.model.label, c.T, c.device, c.batch_size) for c in cases]
    assert got == [
        ("tiny", 1, "cpu", 8), ("tiny", 2, "cpu", 8), ("tiny", 1, "cpu", 16), ("tiny", 2, "cpu", 16),
        ("tiny-b", 4, "cpu", 8), ("tiny-b", 4, "cpu", 16),
    ]


def test_absent_gpus_are_skipped_with_a_note(write_suite, tiny_suite_text, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    suite = load_suite(write_suite(tiny_suite_text.replace('["cpu"]', '["cpu", "cuda:*", "cuda:1"]')))
    cases, notes = expand_cases(suite)
    assert {c.device for c in cases} == {"cpu"}
    assert any("cuda:*" in n for n in notes) and any("cuda:1" in n for n in notes)


def test_env_var_in_root_and_checkpoint(write_suite, tiny_suite_text, monkeypatch, tmp_path):
    monkeypatch.setenv("SNNBENCH_CKPT_DIR", str(tmp_path / "ck"))
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "m.pt").write_bytes(b"")  # validation checks the file is there, not its content
    text = tiny_suite_text + 'checkpoint = "${SNNBENCH_CKPT_DIR}/m.pt"\n'
    suite = load_suite(write_suite(text))
    assert suite.models[0].checkpoint == str(tmp_path / "ck" / "m.pt")
    monkeypatch.delenv("SNNBENCH_CKPT_DIR")
    err = _error(write_suite, text)
    assert err.field == "models[0].checkpoint" and "SNNBENCH_CKPT_DIR" in err.problem
