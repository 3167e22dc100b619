"""The flat fast path prints exactly what the general program prints, and leaves it the rest.

A template of only text, path mustaches and ``{{json path}}`` renders through
a flat program (lookups and one join). Each case here renders through both
and compares, on hostile and edge values too.
"""

from __future__ import annotations

import json
import math
import random
import re
from typing import Any

import pytest

from hub_stream.templating import SafeString, Template, TemplateRenderError, compile_template
from hub_stream.templating.values import escape_json, json_literal, needs_json_escape

FLAT = [
    '{"a": "{{a}}", "b": {{json b}}, "c": "{{c.d}}", "e": "{{@event.X}}"}',
    "{{a}}|{{{a}}}|{{&a}}|{{json a}}|{{{json a}}}",
    "{{this}}|{{.}}|{{this.a}}|{{./a}}|{{@root.a}}|{{@root}}|{{@event}}",
    "{{xs.length}}|{{xs.0}}|{{xs.[1]}}|{{s.length}}|{{c.d.e}}|{{[a b]}}|{{c/d}}",
    "{{json xs}}|{{json c}}|{{json missing}}|{{json c.d}}|{{json @event}}|{{json @event.X}}|{{json \"lit\"}}|{{json 3}}|{{json null}}",
    "{{__class__}}|{{a.__class__}}|{{xs.__len__}}|{{s.upper}}|{{@event.__class__}}|{{json __dict__}}|{{constructor}}",
    "{{missing}}|{{missing.deeper}}|{{@missing}}|{{@missing.x}}|{{{missing}}}",
    "text before {{a}} % {0} %s { } and \\{{not}} after",
    "{{a~}}   {{~b}}",
    "{{json a}} before {{a}} and {{{c.d}}} before {{c.d}}",
    "{{c.d}}",
    "{{{a}}}",
]

VALUES: list[Any] = [
    "plain",
    'q"uote\\back\nnew\ttab\x00nul\x1fus\x7fdel',
    "<b>&'`=</b>",
    "é ü 𝄞 \u2028\u2029 \ud800",
    "",
    None,
    True,
    False,
    0,
    -7,
    2**70,
    100.0,
    1.5,
    -0.0,
    1e21,
    1e-7,
    math.nan,
    math.inf,
    -math.inf,
    [],
    [1, [2, 3], None, "s", 1.0],
    {},
    {"d": "nested", "e": [1.0, None]},
    SafeString('<safe "text">'),
]


def contexts() -> list[dict[str, Any]]:
    out = []
    for value in VALUES:
        out.append(
            {
                "a": value,
                "b": value,
                "c": {"d": value},
                "xs": [value, value],
                "s": value,
                "a b": value,
                "__class__": value,
            }
        )
    out.append({})  # everything missing
    out.append({"c": "not a dict", "xs": "str", "s": ["a", "list"]})
    return out


def general_of(template: Template) -> Template:
    """The same template without its flat program: everything goes the general way."""
    return Template(template.source, template._program)


def outcome(template: Template, context: Any, **kwargs: Any) -> tuple[str, str]:
    try:
        return "ok", template.render(context, **kwargs)
    except TemplateRenderError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("source", FLAT)
@pytest.mark.parametrize("escape", ["json", "html"])
def test_flat_and_general_print_the_same(source: str, escape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    template = compile_template(source)
    assert template._flat is not None, "expected a flat program"
    general = general_of(template)
    data_sets: list[dict[str, Any] | None] = [None, {"event": {"X": 'x"1', "__class__": 1}}, {"event": "str"}, {"root": {"a": "data root"}}]
    expected = [(ctx, data, general.render(ctx, data=data, escape=escape)) for ctx in contexts() for data in data_sets]

    def no_general(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("the flat program fell back to the general one")

    monkeypatch.setattr(Template, "_render_general", no_general)
    for ctx, data, want in expected:
        assert template.render(ctx, data=data, escape=escape) == want, (ctx, data)


def test_templates_with_blocks_helpers_or_partials_are_not_flat() -> None:
    for source in [
        "{{#if a}}x{{/if}}",
        "{{> p}}",
        "{{lookup a b}}",
        "{{json a b}}",
        "{{json a x=1}}",
        "{{json (lookup a b)}}",
        "{{each}}",
        "{{log}}",
        "{{json}}",
        '{{#*inline "p"}}x{{/inline}}',
        "only text",
        "{{!-- only a comment --}}",
    ]:
        assert compile_template(source)._flat is None, source


def test_a_root_that_is_no_dict_goes_the_general_way() -> None:
    template = compile_template("{{this}}|{{length}}|{{0}}|{{json this}}")
    general = general_of(template)
    for root in [["a", "b"], "text", None, 5, {"length": 1}]:
        assert template.render(root, escape="json") == general.render(root, escape="json")


def test_registered_helpers_that_shadow_a_name_are_called() -> None:
    template = compile_template('{"a": "{{a}}", "b": {{json b}}}')
    helpers = {"a": lambda options: SafeString("HELPER"), "json": lambda value, options: SafeString("J")}
    assert template.render({"a": 1, "b": 2}, helpers=helpers, escape="json") == '{"a": "HELPER", "b": J}'
    assert template.render({"a": 1, "b": 2}, helpers={"other": lambda o: ""}, escape="json") == '{"a": "1", "b": 2}'


def test_partials_given_are_still_compiled_and_checked() -> None:
    from hub_stream.templating import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError):
        compile_template("{{a}}").render({"a": 1}, partials={"bad": "{{#if}}"})


def test_output_limit_and_failures_match_the_general_program() -> None:
    template = compile_template('{"a": "{{a}}", "j": {{json j}}, "s": "{{s}}"}')
    general = general_of(template)
    big = {"a": "x" * 2000, "j": 1, "s": "y"}
    assert outcome(template, big, max_output=1000) == outcome(general, big, max_output=1000)
    assert outcome(template, big, max_output=1000)[0] == "error"
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    circular: dict[str, Any] = {}
    circular["self"] = circular
    for ctx in [{"a": deep, "j": 1, "s": ""}, {"a": "", "j": deep, "s": ""}, {"a": "", "j": circular, "s": ""}]:
        assert outcome(template, ctx, escape="json") == outcome(general, ctx, escape="json")
        assert outcome(template, ctx, escape="json")[0] == "error"


def test_dict_subclasses_and_mappings_as_data() -> None:
    from collections import OrderedDict
    from types import MappingProxyType

    template = compile_template("{{a}}|{{@event.X}}|{{@root.a}}")
    general = general_of(template)
    root = OrderedDict(a="od")
    data = MappingProxyType({"event": {"X": "mp"}})
    assert template.render(root, data=data) == general.render(root, data=data) == "od|mp|od"
    assert template.render({"a": "d"}, data=data) == "d|mp|d"


def test_needs_json_escape_is_the_regex() -> None:
    pattern = re.compile(r'["\\\x00-\x1f\ud800-\udfff]')
    for code in list(range(0x3000)) + [0xD800, 0xDFFF, 0xFEFF, 0xFFFF, 0x10FFFF, 0x1D11E, 0xE0001]:
        char = chr(code)
        assert needs_json_escape(char) == (pattern.search(char) is not None), hex(code)
        assert needs_json_escape(f"ab{char}cd") == (pattern.search(char) is not None), hex(code)


def _old_escape_json(text: str) -> str:
    """escape_json as it was first written, plus lone surrogates escaped: the reference."""
    return re.sub(r'["\\\x00-\x1f\ud800-\udfff]', lambda m: json.dumps(m.group())[1:-1], text)


def _old_json_literal(value: Any) -> str:
    """json_literal as it was first written: the reference."""
    from hub_stream.templating.values import _plain

    text = json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return re.sub(r"[\ud800-\udfff]", lambda m: json.dumps(m.group())[1:-1], text)


def test_escape_json_matches_the_reference() -> None:
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0x80)] + ["é", "\u2028", "\ud800", "\udfff", "𝄞", "\x85", "\ufeff"]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert escape_json(text) == _old_escape_json(text), repr(text)


def test_json_literal_matches_the_reference() -> None:
    from hub_stream.templating import UNDEFINED

    values: list[Any] = [*VALUES, UNDEFINED, 1e300, -1e21, 123456789.125, 5e-324, 2**64 + 0.0, [math.nan, {"k": math.inf}], {1: "int key"}]
    for value in values:
        assert json_literal(value) == _old_json_literal(value), repr(value)


ROW_TEXTS = [
    '{"a": 1}',
    ' \n{"a": 1}\n ',
    '{"a": "é\\u00e9\\/\\ud83d\\ude00\\ud800", "n": [1.0, 1e5, -0, 10000000000000000000000, NaN, Infinity]}',
    '{"dup": 1, "dup": 2}',
    "{}",
    '{"a": {"b": [true, false, null]}}\t',
    '{"a": 1}{"b": 2}',
    '{"a": 1} x',
    '{"a": }',
    '{"a": "\x01"}',
    '{"a": "\\x"}',
    "\ufeff{}",
    "",
    "   ",
    "[1, 2]",
    '"str"',
    "nul",
]


@pytest.mark.parametrize("text", ROW_TEXTS)
def test_row_check_and_compaction_match_json_loads_and_dumps(text: str) -> None:
    from hub_stream.templating import payload

    def reference(text: str) -> tuple[str, Any]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return "error", (exc.msg, exc.lineno, exc.colno)
        return "ok", (value, json.dumps(value, separators=(",", ":"), ensure_ascii=False) if isinstance(value, dict) else None)

    def ours(text: str) -> tuple[str, Any]:
        try:
            value = payload._load(text)
        except json.JSONDecodeError as exc:
            return "error", (exc.msg, exc.lineno, exc.colno)
        return "ok", (value, payload._compact(value) if isinstance(value, dict) else None)

    want, got = reference(text), ours(text)
    assert got[0] == want[0]
    if want[0] == "ok":
        assert got[1][1] == want[1][1]
        assert json.dumps(got[1][0]) == json.dumps(want[1][0])  # NaN != NaN: compare the dumps
    else:
        assert got == want


def test_rows_are_compacted_by_the_c_encoder_when_it_is_there() -> None:
    from hub_stream.templating import payload

    assert payload._compact is not payload._COMPACT.encode or payload.c_make_encoder is None
