"""JSON Schema → Gemini Schema translation: the shapes pydantic and zod really emit."""

from __future__ import annotations

import contextlib

import pytest

from llm_gateway.providers import jsonschema
from llm_gateway.providers.jsonschema import SchemaInvalid, check_schema, is_empty_object, to_gemini_schema


def test_drops_unsupported_keys_and_uppercases_types() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "strict": True,
              "additionalProperties": False, "properties": {"n": {"type": "integer", "format": "int32", "minimum": 1}}}
    assert to_gemini_schema(schema) == {"type": "OBJECT", "properties": {"n": {"type": "INTEGER", "format": "int32",
                                                                               "minimum": 1}}}


def test_type_list_with_null_becomes_nullable() -> None:
    assert to_gemini_schema({"type": ["string", "null"]}) == {"type": "STRING", "nullable": True}


def test_pydantic_optional_anyof_null() -> None:
    schema = {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None, "title": "Age"}
    assert to_gemini_schema(schema) == {"type": "INTEGER", "nullable": True, "title": "Age", "default": None}


def test_defs_and_refs_are_inlined() -> None:
    schema = {"type": "object", "properties": {"pet": {"$ref": "#/$defs/Pet"},
                                               "owner": {"anyOf": [{"$ref": "#/definitions/Person"}, {"type": "null"}]}},
              "$defs": {"Pet": {"type": "object", "properties": {"kind": {"enum": ["cat", "dog"]}}, "required": ["kind"]}},
              "definitions": {"Person": {"type": "object", "properties": {"name": {"type": "string"}}}}}
    out = to_gemini_schema(schema)
    assert out["properties"]["pet"] == {"type": "OBJECT", "properties": {"kind": {"type": "STRING", "enum": ["cat", "dog"]}},
                                        "required": ["kind"]}
    assert out["properties"]["owner"] == {"type": "OBJECT", "nullable": True,
                                          "properties": {"name": {"type": "STRING"}}}
    assert "$defs" not in out and "definitions" not in out


def _object_without_properties(schema: object) -> bool:
    """Whether Gemini would refuse `schema`: an OBJECT without properties at any depth."""
    if isinstance(schema, list):
        return any(_object_without_properties(item) for item in schema)
    if not isinstance(schema, dict):
        return False
    if schema.get("type") == "OBJECT" and not schema.get("properties"):
        return True
    return any(_object_without_properties(value) for value in schema.values())


def test_recursive_ref_stops_without_an_object_gemini_refuses() -> None:
    schema = {"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}}}
    out = to_gemini_schema(schema)
    assert out == {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}}  # children: a bare object
    assert not _object_without_properties(out)


def test_open_objects_are_left_out_because_gemini_refuses_them() -> None:
    """Gemini answers 400 "should be non-empty for OBJECT type" to an OBJECT without properties at
    any depth (a pydantic `dict[str, Any]` field, a zod `z.record()`): such arguments are not offered."""
    schema = {"type": "object", "required": ["op", "params", "rows"], "properties": {
        "op": {"type": "string"},
        "params": {"type": "object", "additionalProperties": True},
        "rows": {"type": "array", "items": {"type": "object"}},
        "either": {"anyOf": [{"type": "string"}, {"type": "object"}, {"type": "integer"}]},
        "nested": {"type": "object", "properties": {"inner": {"type": "object", "properties": {}}}},
        "maps": {"anyOf": [{"type": "object"}, {"type": "object", "additionalProperties": {"type": "string"}}]},
    }}  # fmt: skip
    out = to_gemini_schema(schema)
    assert out == {"type": "OBJECT", "required": ["op"], "properties": {
        "op": {"type": "STRING"}, "either": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}}}  # fmt: skip
    assert not _object_without_properties(out)


def test_non_string_enum_becomes_description_hint() -> None:
    out = to_gemini_schema({"type": "integer", "enum": [1, 2, 3], "description": "Level"})
    assert out == {"type": "INTEGER", "description": "Level (Allowed values: 1, 2, 3)"}


def test_const_oneof_allof_and_unsupported_format() -> None:
    assert to_gemini_schema({"const": "x"}) == {"type": "STRING", "enum": ["x"]}
    assert to_gemini_schema({"oneOf": [{"type": "string"}, {"type": "number"}]}) == {
        "anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]}
    assert to_gemini_schema({"allOf": [{"type": "string", "format": "email"}], "description": "mail"}) == {
        "type": "STRING", "description": "mail"}


def test_arrays_get_items_and_required_is_filtered() -> None:
    assert to_gemini_schema({"type": "array"}) == {"type": "ARRAY", "items": {"type": "STRING"}}
    out = to_gemini_schema({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "ghost"]})
    assert out["required"] == ["a"]


def test_empty_object_detection() -> None:
    assert is_empty_object(None)
    assert is_empty_object(to_gemini_schema({"type": "object", "properties": {}}))
    assert not is_empty_object(to_gemini_schema({"type": "object", "properties": {"a": {"type": "string"}}}))


# --- bounded work: $ref inlining cannot be turned into a CPU and memory bomb ----------------------
def _bomb(levels: int, description: str = "") -> dict:
    defs = {f"L{i}": {"type": "object", "description": description,
                      "properties": {"a": {"$ref": f"#/$defs/L{i + 1}"}, "b": {"$ref": f"#/$defs/L{i + 1}"}}}
            for i in range(levels)}
    defs[f"L{levels}"] = {"type": "string"}
    return {"type": "object", "properties": {"root": {"$ref": "#/$defs/L0"}}, "$defs": defs}


def test_a_reference_bomb_stops_at_the_node_cap_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    """20 levels of two $refs would expand to a million nodes; the translation stops once it has
    made MAX_SCHEMA_NODES. Counted in calls rather than timed (a timed bound failed on a loaded
    machine): the work is what must be bounded."""
    from llm_gateway.providers import jsonschema
    from llm_gateway.providers.jsonschema import MAX_SCHEMA_NODES, SchemaTooLarge, to_gemini_schema

    calls = 0
    real = jsonschema._translate

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(jsonschema, "_translate", counted)
    with pytest.raises(SchemaTooLarge, match="nodes"):
        to_gemini_schema(_bomb(20))
    assert MAX_SCHEMA_NODES <= calls <= MAX_SCHEMA_NODES + 1  # every node is one call, and it stops at the cap


def test_copied_text_is_capped_in_bytes() -> None:
    from llm_gateway.providers.jsonschema import SchemaTooLarge, to_gemini_schema

    with pytest.raises(SchemaTooLarge, match="bytes"):
        to_gemini_schema(_bomb(9, description="d" * 2_000))  # 1,023 copies of 2 KB, few nodes


def test_ordinary_shared_definitions_still_translate() -> None:
    from llm_gateway.providers.jsonschema import to_gemini_schema

    out = to_gemini_schema(_bomb(6, description="a level"))
    assert out["properties"]["root"]["properties"]["a"]["description"] == "a level"


# --- malformed schemas: the caller's mistake is a 400, never an exception the handler answers 500 ---
@pytest.mark.parametrize("schema", [
    {"type": 5},
    {"type": True},
    {"type": "object", "properties": {"a": {"type": {"nested": "object"}}}},
    {"$defs": "x"},
    {"definitions": [1]},
    {"type": "object", "properties": {"a": {"type": "string"}}, "required": 5},
    {"type": "object", "properties": {"a": {"type": "string"}}, "required": [1, {}]},
    {"required": 5},  # without `properties` (it was read only beside them)
    {"type": "object", "required": 5},
    {"type": [5]},  # an array holding no type name (its non-names were dropped silently)
    {"type": ["string", 5]},
    # `properties`, `items` and the combinators of the wrong JSON type were read past silently
    {"properties": 5},
    {"type": "object", "properties": ["a"]},
    {"type": "object", "properties": {"a": 5}},
    {"items": 5},
    {"type": "array", "items": "string"},
    {"type": "array", "items": [{"type": "string"}, 5]},
    {"type": "object", "properties": {"a": {"type": "array", "items": 5}}},  # nested
    {"type": "object", "properties": {"a": {"properties": 5}}},
    {"anyOf": 5},
    {"oneOf": {"type": "string"}},
    {"allOf": "x"},
    {"anyOf": [{"type": "string"}, 5]},
    {"allOf": [{"properties": 5}]},  # merged into its parent
    {"anyOf": [{"type": "null"}, {"items": 5}]},  # the single branch merged into its parent
    {"$defs": {"A": {"properties": 5}}, "properties": {"a": {"$ref": "#/$defs/A"}}},  # through a $ref
    # `$defs`/`definitions` anywhere, falsy ones too, and their entries (final read: all accepted)
    {"$defs": 0},
    {"definitions": False},
    {"$defs": []},
    {"$defs": {"x": 5}},
    {"type": "object", "properties": {"a": {"type": "object", "$defs": 5}}},
])
def test_a_malformed_schema_is_refused_as_invalid_not_a_crash(schema: dict) -> None:
    """Each of these raised TypeError inside the translation (`{**"x"}`, iterating an int, an
    unhashable `required` entry), which validation does not turn into a 400: the handler's last
    resort answered 500 and counted it where the rollback alarms look."""
    from llm_gateway.providers.jsonschema import SchemaInvalid, check_schema

    with pytest.raises(SchemaInvalid):
        check_schema(schema)


@pytest.mark.parametrize("schema", [
    {"type": "array", "items": True},  # boolean schemas are JSON Schema too
    {"type": "array", "items": False},
    {"type": "object", "properties": {"a": True, "b": {"type": "string"}}},
    {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},  # the tuple form of drafts 4-2019
    {"anyOf": [{"type": "string"}, True]},
    {"type": "object", "properties": {}},
    {"$defs": {}, "definitions": {"A": True}},
])
def test_well_typed_keywords_are_accepted(schema: dict) -> None:
    from llm_gateway.providers.jsonschema import check_schema

    assert check_schema(schema) is schema


def test_no_json_value_makes_the_translation_raise_anything_but_its_own_errors() -> None:
    """Property: whatever JSON a caller sends as a schema, the translation ends in a Schema or in
    one of the two errors validation turns into a 400."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from llm_gateway.providers.jsonschema import SchemaInvalid, SchemaTooLarge, to_gemini_schema

    keys = st.sampled_from(["type", "properties", "required", "items", "anyOf", "oneOf", "allOf", "enum", "const",
                            "$ref", "$defs", "definitions", "format", "description", "nullable"])
    leaf = (st.none() | st.booleans() | st.integers() | st.text(max_size=4)
            | st.sampled_from(["object", "string", "array", "null", "#/$defs/a", "#/definitions/a", "a"]))
    values = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(keys | st.text(max_size=3), inner, max_size=4), max_leaves=12)

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.dictionaries(keys, values, max_size=5))
    def translate(schema: dict) -> None:
        with contextlib.suppress(SchemaInvalid, SchemaTooLarge):
            to_gemini_schema(schema)

    translate()


def test_a_schema_that_passed_is_told_apart_from_one_that_differs_only_in_type() -> None:
    """`check_schema` remembers schemas that passed by their repr: a tuple where a list was, or
    `True` where `1` was, is another schema and is checked anew."""
    listed = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert check_schema(listed) is listed
    assert check_schema(dict(listed)) == listed  # remembered: the same verdict
    with pytest.raises(SchemaInvalid, match="'required' must be an array"):
        check_schema({**listed, "required": ("a",)})
    with pytest.raises(SchemaInvalid, match="'type' must be"):
        check_schema({"type": 1})
    check_schema({"type": "string"})
    with pytest.raises(SchemaInvalid):  # a failure is never remembered as a pass
        check_schema({"type": 1})


def test_remembered_passes_are_bounded() -> None:
    for n in range(jsonschema._PASSED_MAX + 10):
        check_schema({"type": "object", "properties": {f"p{n}": {"type": "string"}}})
    assert len(jsonschema._PASSED) <= jsonschema._PASSED_MAX
    huge = {"type": "object", "properties": {f"p{n}": {"type": "string"} for n in range(600)}}
    check_schema(huge)
    assert repr(huge) not in jsonschema._PASSED
