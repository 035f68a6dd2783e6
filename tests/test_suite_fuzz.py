"""Property-based suite validation: any input is either accepted or rejected with a SuiteError
(file, field, fix), never a crash with a traceback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.suite import Suite, SuiteError, load_suite

KEYS = ["suite", "data", "models", "metrics", "train", "name", "seed", "time_steps", "devices", "dataset",
        "batch_size", "root", "on_missing", "kwargs", "label", "checkpoint", "max_samples", "image_size",
        "case_timeout_s", "memory_limit_gib", "fallback_samples", "split", "num_workers", "trained_T", "bogus"]

scalars = st.one_of(
    st.integers(min_value=-10**6, max_value=10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(), st.sampled_from(["digits", "synthetic", "imagenet", "cpu", "cuda:*", "tpu", "", "x" * 80,
                                    "spiking_resnet18", "toy_models:tiny_snn", "accuracy", "synthetic"]),
    st.text(max_size=12),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
                      max_leaves=12)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(doc: dict) -> str:
    return "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items()) + "\n"


VALID = {
    "suite": {"name": "fuzz", "time_steps": [1], "metrics": ["params"]},
    "data": {"dataset": "synthetic", "batch_size": 2},
    "models": [{"name": "toy_models:tiny_snn"}],
}


def check(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "suite.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            assert isinstance(load_suite(path), Suite)
        except SuiteError as err:
            assert err.file == str(path) and err.field and err.fix


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_random_documents(doc):
    check(toml_document(doc))


@FUZZ
@given(st.sampled_from(["suite", "data"]), st.sampled_from(KEYS), values)
def test_one_field_changed_in_a_valid_suite(table, key, value):
    doc = json.loads(json.dumps(VALID))
    doc[table][key] = value
    check(toml_document(doc))


@FUZZ
@given(st.sampled_from(KEYS[:25]), values)
def test_one_model_field_changed(key, value):
    doc = json.loads(json.dumps(VALID))
    doc["models"][0][key] = value
    check(toml_document(doc))


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_arbitrary_bytes_and_text(blob):
    check(blob)


def test_deeply_nested_and_huge(tmp_path):
    check("x = " + "[" * 5000 + "]" * 5000 + "\n")
    check("# " + "a" * 2_000_000 + "\n")
    valid = tmp_path / "valid.toml"
    valid.write_text(toml_document(VALID))
    assert load_suite(valid).name == "fuzz", "the base document of the fuzzers is itself valid"


KWARG_KEYS = ["width", "widht", "neuron", "neuron_params", "T", "cnf", "num_classes", "in_channels", "input_size",
              "stem_once", "depth", "tau", "v_threshold", "proj", "drop_rate", "bogus"]
kwarg_values = st.one_of(
    scalars, st.sampled_from(["if", "lif", "dsr_if", "ADD", "IAND", "cifar", "imagenet", "pool"]),
    st.floats(min_value=-2.0, max_value=70.0),
    st.dictionaries(st.sampled_from(["tau", "v_threshold", "tauu", "surrogate", "alpha", "T"]), scalars, max_size=3))


@FUZZ
@given(st.sampled_from(["sew_resnet18", "ms_resnet18", "danet_c50", "dsr_vgg11", "spikeformer_dvs_gesture",
                        "toy_models:tiny_snn"]),
       st.dictionaries(st.sampled_from(KWARG_KEYS), kwarg_values, max_size=3))
def test_random_model_kwargs(name, kwargs):
    doc = json.loads(json.dumps(VALID))
    doc["models"][0] = {"name": name, "kwargs": kwargs}
    check(toml_document(doc))


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_random_documents_under_no_import(doc):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "suite.toml"
        path.write_text(toml_document(doc), encoding="utf-8")
        try:
            suite = load_suite(path, allow_import=False)
        except SuiteError as err:
            assert err.file == str(path) and err.field and err.fix
        else:
            assert all(":" not in m.name for m in suite.models)
