"""Control-plane records: what flows between producers, the store and the loader.

A :class:`SampleRef` names one sample's features in a feature store; it never carries tensors, so
the control plane stays metadata-only and can live in Redis or SQLite. This module imports only the
standard library: producers and tools use it without torch.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
_INT_LIMIT = 2**63  # a ref's counts fit a signed 64-bit int, as SQLite and JSON codecs read them back


class TensorInRefError(TypeError):
    """A control-plane record holds a tensor (or something tensor-like): refs must be metadata only."""


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Name, shape and dtype of one stored feature tensor (described, never held)."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self) -> None:
        if isinstance(self.shape, list):  # JSON gives a list
            object.__setattr__(self, "shape", tuple(self.shape))
        if not (
            type(self.name) is str
            and self.name
            and type(self.dtype) is str
            and self.dtype
            and type(self.shape) is tuple
            and all(type(d) is int and d >= 0 for d in self.shape)
        ):
            _require(
                isinstance(self.name, str) and bool(self.name),
                "FeatureSpec.name",
                "a non-empty string",
                self.name,
            )
            _require(
                isinstance(self.dtype, str) and bool(self.dtype),
                "FeatureSpec.dtype",
                "a non-empty string",
                self.dtype,
            )
            raise TypeError(f"FeatureSpec.shape must be a sequence of non-negative ints, got {self.shape!r}")


@dataclass(frozen=True, slots=True)
class SampleRef:
    """One sample, by reference: where its features live and what they look like."""

    sample_id: str
    run_id: str
    feature_uri: str
    feature_keys: tuple[str, ...]
    feature_specs: tuple[FeatureSpec, ...] = ()
    strategy: str = "eagle3"
    num_tokens: int = 0
    estimated_bytes: int = 0
    target_model_version: str = ""
    tokenizer_version: str = ""
    schema_version: int = SCHEMA_VERSION
    _json: str | None = field(default=None, init=False, repr=False, compare=False)
    _wire: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.feature_keys) is not tuple and isinstance(self.feature_keys, list):
            object.__setattr__(self, "feature_keys", tuple(self.feature_keys))
        specs = self.feature_specs
        if type(specs) is not tuple or not all(type(spec) is FeatureSpec for spec in specs):
            if not isinstance(specs, list | tuple):
                raise TypeError(f"SampleRef.feature_specs must be a sequence of FeatureSpec, got {specs!r}")
            object.__setattr__(self, "feature_specs", tuple(_as_feature_spec(spec) for spec in specs))
        if not (
            _is_plain_ref(self)
            and self.sample_id
            and self.run_id
            and self.feature_uri
            and all(self.feature_keys)
            and 0 <= self.num_tokens < _INT_LIMIT
            and 0 <= self.estimated_bytes < _INT_LIMIT
            and 0 <= self.schema_version < _INT_LIMIT
        ):
            self._explain_invalid()

    def _explain_invalid(self) -> None:
        for name in ("sample_id", "run_id", "feature_uri"):
            value = getattr(self, name)
            _require(isinstance(value, str) and bool(value), f"SampleRef.{name}", "a non-empty string", value)
        for name in ("strategy", "target_model_version", "tokenizer_version"):
            _require(
                isinstance(getattr(self, name), str), f"SampleRef.{name}", "a string", getattr(self, name)
            )
        for name in ("num_tokens", "estimated_bytes", "schema_version"):
            value = getattr(self, name)
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _INT_LIMIT
            _require(ok, f"SampleRef.{name}", "a non-negative int below 2**63", value)
        keys = self.feature_keys
        raise TypeError(f"SampleRef.feature_keys must be a sequence of non-empty strings, got {keys!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_id": self.sample_id,
            "run_id": self.run_id,
            "feature_uri": self.feature_uri,
            "feature_keys": list(self.feature_keys),
            "feature_specs": [[s.name, list(s.shape), s.dtype] for s in self.feature_specs],
            "strategy": self.strategy,
            "num_tokens": self.num_tokens,
            "estimated_bytes": self.estimated_bytes,
            "target_model_version": self.target_model_version,
            "tokenizer_version": self.tokenizer_version,
            "schema_version": self.schema_version,
        }

    def to_json(self) -> str:
        """Compact JSON, computed once per ref (refs are immutable)."""
        if self._json is None:
            object.__setattr__(self, "_json", json.dumps(self.to_dict(), separators=(",", ":")))
        return self._json  # type: ignore[return-value]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleRef:
        version = data.get("schema_version", SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"SampleRef schema_version {version} is newer than this runtime's {SCHEMA_VERSION}"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str | bytes) -> SampleRef:
        ref = cls.from_dict(json.loads(text))
        if isinstance(text, str):
            object.__setattr__(ref, "_json", text)
        return ref

    def to_store_json(self) -> str:
        """The compact form stores keep: a JSON array in field order, ending with the schema version.

        Half the bytes of :meth:`to_json` and about twice as fast to parse, which is what leasing
        thousands of refs per second spends its time on. Computed once per ref.
        """
        if self._wire is None:
            row = (
                self.sample_id, self.run_id, self.feature_uri, self.feature_keys,
                [(s.name, s.shape, s.dtype) for s in self.feature_specs], self.strategy,
                self.num_tokens, self.estimated_bytes, self.target_model_version,
                self.tokenizer_version, self.schema_version,
            )  # fmt: skip
            _set(self, "_wire", _encode_row(row))
        return self._wire  # type: ignore[return-value]

    @classmethod
    def from_store_json(cls, text: str) -> SampleRef:
        """A ref read back from a metadata store, which only ever holds refs validated at commit.

        JSON cannot carry a tensor, so this skips the per-field checks; the schema version is
        still enforced.
        """
        return cls.many_from_store_json((text,))[0]

    @classmethod
    def many_from_store_json(cls, texts: Iterable[str]) -> list[SampleRef]:
        """:meth:`from_store_json` for each of ``texts``: what a lease of a batch reads back."""
        refs = []
        # Unrolled slot setters: a loop over them costs more than the rest of the decode.
        s_id, s_run, s_uri, s_keys, s_specs, s_strategy, s_tokens, s_bytes, s_model, s_tok, s_version = (
            _ROW_SETTERS
        )
        for text in texts:
            row = _decode_row(text)
            if type(row) is not list or len(row) != _STORE_ROW_LEN or row[-1] != SCHEMA_VERSION:
                raise _unreadable_row(row)
            ref = _new(cls)
            s_id(ref, row[0])
            s_run(ref, row[1])
            s_uri(ref, row[2])
            s_keys(ref, tuple(row[3]))
            s_specs(ref, tuple([_stored_feature_spec(n, s, d) for n, s, d in row[4]]))
            s_strategy(ref, row[5])
            s_tokens(ref, row[6])
            s_bytes(ref, row[7])
            s_model(ref, row[8])
            s_tok(ref, row[9])
            s_version(ref, row[10])
            _set_json(ref, None)
            _set_wire(ref, text)
            refs.append(ref)
        return refs


def _unreadable_row(row: Any) -> ValueError:
    version = row[-1] if isinstance(row, list) and row else "?"
    if version == SCHEMA_VERSION:
        return ValueError(f"stored SampleRef row has {len(row)} fields, not {_STORE_ROW_LEN}: {row!r}")
    return ValueError(
        f"stored SampleRef has schema_version {version}; this runtime reads {SCHEMA_VERSION} "
        "(a store written by another version of specforge?)"
    )


_new = object.__new__
_set = object.__setattr__
# Setting a slot through its descriptor is the cheapest way to fill a frozen, slotted instance.
_SLOT_SETTERS = {name: getattr(SampleRef, name).__set__ for name in SampleRef.__slots__}
# to_store_json's row: the fields a ref is built from, in order (not the cached encodings).
_ROW_SETTERS = tuple(_SLOT_SETTERS[f.name] for f in dataclasses.fields(SampleRef) if f.init)
_STORE_ROW_LEN = len(_ROW_SETTERS)
_set_json = _SLOT_SETTERS["_json"]
_set_wire = _SLOT_SETTERS["_wire"]


def _row_codec() -> tuple[Callable[[tuple[Any, ...]], str], Callable[[str], Any]]:
    """How store rows become compact JSON and back: orjson when it is installed (the trainer's
    dependencies have it), about 7x faster to encode and 2x to parse than the standard library, and
    committing and leasing thousands of refs a second is mostly this. Both write the same JSON; ints
    in a ref stay below 2**63, which orjson round-trips exactly."""
    try:
        import orjson
    except ImportError:
        return _stdlib_row_codec()
    dumps = orjson.dumps
    return lambda row: dumps(row).decode(), orjson.loads


def _stdlib_row_codec() -> tuple[Callable[[tuple[Any, ...]], str], Callable[[str], Any]]:
    """json's C encoder called directly (``json.dumps`` builds a new encoder on every call), and its
    decoder without ``json.loads``' per-call checks."""
    raw_decode = json.JSONDecoder().raw_decode
    make: Any = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without json's C speedups
        encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode
        return encode, lambda text: raw_decode(text)[0]
    chunks = make(None, None, json.encoder.encode_basestring, None, ":", ",", False, False, False)
    return lambda row: "".join(chunks(row, 0)), lambda text: raw_decode(text)[0]


_encode_row, _decode_row = _row_codec()
# Refs of one run share a handful of feature specs; reading one back reuses the (immutable) spec.
_SPEC_CACHE: dict[tuple[str, tuple[int, ...], str], FeatureSpec] = {}
_SPEC_CACHE_LIMIT = 4096


def _stored_feature_spec(name: str, shape: list[int], dtype: str) -> FeatureSpec:
    key = (name, tuple(shape), dtype)
    spec = _SPEC_CACHE.get(key)
    if spec is None:
        if len(_SPEC_CACHE) >= _SPEC_CACHE_LIMIT:
            _SPEC_CACHE.clear()
        spec = _new(FeatureSpec)
        _set(spec, "name", name)
        _set(spec, "shape", key[1])
        _set(spec, "dtype", dtype)
        _SPEC_CACHE[key] = spec
    return spec


def _as_feature_spec(value: Any) -> FeatureSpec:
    if isinstance(value, FeatureSpec):
        return value
    if isinstance(value, Mapping):
        return FeatureSpec(value["name"], tuple(value["shape"]), value["dtype"])
    if isinstance(value, list | tuple) and len(value) == 3:
        shape = value[1]
        return FeatureSpec(value[0], tuple(shape) if isinstance(shape, list) else shape, value[2])
    raise TypeError(f"expected a FeatureSpec, a mapping or a (name, shape, dtype) triple, got {value!r}")


def _require(ok: bool, what: str, expected: str, value: Any) -> None:
    if not ok:
        raise TypeError(f"{what} must be {expected}, got {value!r}")


def _is_tensor_like(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        return True
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(obj, numpy.ndarray | numpy.generic):
        return True
    return all(hasattr(obj, attr) for attr in ("dtype", "shape", "device"))


_SCALARS = (str, bytes, int, float, bool, type(None))


def _is_plain_ref(ref: SampleRef) -> bool:
    """True when every field has exactly the type a ref is built with (the common case, checked fast:
    it runs on every ref the control plane accepts, so the fields are spelled out, not looped over)."""
    if not (
        type(ref.sample_id) is str
        and type(ref.run_id) is str
        and type(ref.feature_uri) is str
        and type(ref.feature_keys) is tuple
        and type(ref.feature_specs) is tuple
        and type(ref.strategy) is str
        and type(ref.num_tokens) is int
        and type(ref.estimated_bytes) is int
        and type(ref.target_model_version) is str
        and type(ref.tokenizer_version) is str
        and type(ref.schema_version) is int
    ):
        return False
    for key in ref.feature_keys:
        if type(key) is not str:
            return False
    for spec in ref.feature_specs:
        if type(spec) is not FeatureSpec or type(spec.name) is not str or type(spec.dtype) is not str:
            return False
        for dim in spec.shape:
            if type(dim) is not int:
                return False
    return True


def assert_no_tensors(obj: Any, path: str = "ref") -> None:
    """Raise :class:`TensorInRefError` naming the first tensor-like value found in ``obj``.

    Walks dataclasses, mappings (keys and values) and sequences/sets; torch and numpy are checked
    only if already imported, so the check never imports them.
    """
    if isinstance(obj, _SCALARS) or (type(obj) is SampleRef and _is_plain_ref(obj)):
        return
    if _is_tensor_like(obj):
        raise TensorInRefError(
            f"{path} holds a {type(obj).__module__}.{type(obj).__qualname__}: refs carry metadata only"
        )
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            assert_no_tensors(getattr(obj, f.name), f"{path}.{f.name}")
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            assert_no_tensors(key, f"{path}[{key!r}] (key)")
            assert_no_tensors(value, f"{path}[{key!r}]")
    elif isinstance(obj, list | tuple | set | frozenset):
        for i, value in enumerate(obj):
            assert_no_tensors(value, f"{path}[{i}]")
