"""SampleRef, assert_no_tensors and DeploymentMode: metadata only, clear errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _support.control_plane import make_awkward_ref, make_ref
from specforge_trainer.control_plane import (
    DeploymentMode,
    FeatureSpec,
    SampleRef,
    TensorInRefError,
    assert_no_tensors,
)


def test_ref_round_trips_through_json_and_is_frozen():
    ref = make_ref(3)
    assert SampleRef.from_json(ref.to_json()) == ref
    assert SampleRef.from_dict(ref.to_dict()) == ref
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.sample_id = "other"  # type: ignore[misc]


def test_ref_rejects_values_json_cannot_carry():
    with pytest.raises(TypeError, match=r"SampleRef.target_model_version must be a string"):
        dataclasses.replace(make_ref(0), target_model_version=object())
    with pytest.raises(TypeError, match=r"SampleRef.num_tokens must be a non-negative int"):
        dataclasses.replace(make_ref(0), num_tokens=1.5)
    with pytest.raises(
        TypeError, match=r"SampleRef.estimated_bytes must be a non-negative int below 2\*\*63"
    ):
        dataclasses.replace(make_ref(0), estimated_bytes=2**63)  # SQLite and JSON codecs read 64 bits
    assert dataclasses.replace(make_ref(0), estimated_bytes=2**63 - 1).estimated_bytes == 2**63 - 1
    with pytest.raises(TypeError, match=r"SampleRef.sample_id must be a non-empty string"):
        dataclasses.replace(make_ref(0), sample_id="")
    with pytest.raises(TypeError, match=r"feature_keys"):
        dataclasses.replace(make_ref(0), feature_keys=("ok", {"not": "a key"}))
    with pytest.raises(TypeError, match=r"FeatureSpec.shape"):
        FeatureSpec("h", (2, -1), "bf16")


def test_newer_schema_is_refused():
    data = make_ref(0).to_dict() | {"schema_version": 99}
    with pytest.raises(ValueError, match="schema_version 99"):
        SampleRef.from_dict(data)


class DuckTensor:
    dtype, shape, device = "f32", (2,), "cuda:0"


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"x": [1, torch.zeros(2)]}, r"ref\['x'\]\[1\]"),
        ({"a": {"b": np.zeros(3)}}, r"ref\['a'\]\['b'\]"),
        ([DuckTensor()], r"ref\[0\]"),
        ({"k": (1, 2, np.float32(1.0))}, r"ref\['k'\]\[2\]"),
    ],
)
def test_assert_no_tensors_names_the_path(value, path):
    with pytest.raises(TensorInRefError, match=path):
        assert_no_tensors(value)


def test_assert_no_tensors_walks_dataclasses():
    ref = make_ref(0)
    object.__setattr__(ref, "feature_keys", ("ok", torch.ones(1)))  # smuggled past validation
    with pytest.raises(TensorInRefError, match=r"ref.feature_keys\[1\]"):
        assert_no_tensors(ref)
    assert_no_tensors(make_ref(1))  # a clean ref passes


def test_control_plane_imports_without_torch():
    code = (
        "import sys, specforge_trainer.control_plane as cp;"
        "cp.resolve_control_plane('local_colocated', 'r');"
        "assert not {'torch', 'numpy'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_deployment_mode_parsing():
    assert DeploymentMode.parse("dataflow_colocated") is DeploymentMode.DATAFLOW_COLOCATED
    assert DeploymentMode.parse(DeploymentMode.DISAGGREGATED) is DeploymentMode.DISAGGREGATED
    assert [m.durable for m in DeploymentMode] == [False, True, True]
    with pytest.raises(ValueError) as err:
        DeploymentMode.parse("colocated")
    message = str(err.value)
    assert "'colocated'" in message
    assert all(m.value in message for m in DeploymentMode)


def test_the_store_fast_path_builds_the_same_ref_and_still_checks_the_schema():
    ref = make_ref(4)
    fast = SampleRef.from_store_json(ref.to_store_json())
    assert fast == ref and hash(fast) == hash(ref) and fast.feature_specs[0].shape == (128, 192)
    assert fast.to_json() == ref.to_json() and len(ref.to_store_json()) < len(ref.to_json())
    assert_no_tensors(fast)
    newer = ref.to_store_json()[:-2] + "7]"
    with pytest.raises(ValueError, match="schema_version 7"):
        SampleRef.from_store_json(newer)
    short = '["s1","run-a",1]'
    with pytest.raises(ValueError, match="has 3 fields, not 11"):
        SampleRef.from_store_json(short)
    batch = [make_ref(i) for i in range(3)]
    assert SampleRef.many_from_store_json(r.to_store_json() for r in batch) == batch


@pytest.mark.parametrize(
    "text",
    ['quote " and back\\slash', "unicode é 漢字 \U0001f600", "control \n\t\x00\x1f", "</script>", "' ,[]{}"],
)
def test_the_store_form_is_json_whatever_the_strings_hold(text):
    ref = SampleRef(
        sample_id=text,
        run_id=text,
        feature_uri=f"file:///{text}",
        feature_keys=(text, "k"),
        feature_specs=(FeatureSpec(text, (), text), FeatureSpec("m", (1, 0, 3), "bf16")),
        strategy=text,
        num_tokens=7,
        estimated_bytes=2**40,
        target_model_version=text,
        tokenizer_version="",
    )
    wire = ref.to_store_json()
    assert json.loads(wire) == [
        text, text, f"file:///{text}", [text, "k"], [[text, [], text], ["m", [1, 0, 3], "bf16"]], text, 7, 2**40,
        text, "", ref.schema_version,
    ]  # fmt: skip
    assert SampleRef.from_store_json(wire) == ref


def test_the_standard_library_codec_writes_and_reads_the_same_rows_as_orjson():
    """orjson is an accelerator: without it (``records`` needs only the standard library) a process
    writes rows this one reads, and reads the rows this one writes, strings of every kind included."""
    plain = f"""
import sys
sys.modules["orjson"] = None  # as if it were not installed
sys.path.insert(0, {str(Path(__file__).parents[2])!r})
from _support.control_plane import make_awkward_ref
from specforge_trainer.control_plane.records import SampleRef
assert SampleRef.from_store_json(sys.stdin.read()) == make_awkward_ref()
print(make_awkward_ref().to_store_json())
"""
    ref = make_awkward_ref()
    stdlib_row = subprocess.run(
        [sys.executable, "-c", plain], input=ref.to_store_json(), capture_output=True, text=True, check=True
    ).stdout.strip()
    assert json.loads(stdlib_row) == json.loads(ref.to_store_json())
    assert SampleRef.from_store_json(stdlib_row) == ref


def test_feature_specs_come_as_specs_mappings_or_triples_and_anything_else_is_named():
    spec = FeatureSpec("hidden_states", (128, 192), "bfloat16")
    forms = [
        spec,
        {"name": "hidden_states", "shape": [128, 192], "dtype": "bfloat16"},
        ["hidden_states", [128, 192], "bfloat16"],  # the JSON form (to_dict)
        ("hidden_states", (128, 192), "bfloat16"),
    ]
    for form in forms:
        assert dataclasses.replace(make_ref(0), feature_specs=[form]).feature_specs == (spec,), form
    with pytest.raises(TypeError, match=r"a mapping or a \(name, shape, dtype\) triple, got \['h', \[1\]\]"):
        dataclasses.replace(make_ref(0), feature_specs=[["h", [1]]])
    with pytest.raises(TypeError, match=r"sequence of FeatureSpec"):
        dataclasses.replace(make_ref(0), feature_specs="h")


@pytest.mark.parametrize(
    ("name", "shape", "dtype", "problem"),
    [
        (None, (1,), "bf16", r"FeatureSpec.name must be a non-empty string, got None"),
        ("", (1,), "bf16", r"FeatureSpec.name must be a non-empty string, got ''"),
        ("h", (1,), "", r"FeatureSpec.dtype must be a non-empty string, got ''"),
        ("h", (1,), 7, r"FeatureSpec.dtype must be a non-empty string, got 7"),
        ("h", (1.0,), "bf16", r"FeatureSpec.shape must be a sequence of non-negative ints, got \(1.0,\)"),
        ("h", "12", "bf16", r"FeatureSpec.shape must be a sequence of non-negative ints, got '12'"),
    ],
)
def test_a_bad_feature_spec_names_the_field(name, shape, dtype, problem):
    with pytest.raises(TypeError, match=problem):
        FeatureSpec(name, shape, dtype)


def test_a_feature_spec_shape_given_as_a_list_is_kept_as_a_tuple():
    assert FeatureSpec("h", [0, 3], "bf16") == FeatureSpec("h", (0, 3), "bf16")
