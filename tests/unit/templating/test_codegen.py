"""Native programs: template text never becomes Python source, and they print what the closures print.

The generator may write only its own constructs; every name, literal and text
from a template goes into the constants table (``_K<i>``). The fuzz test below
builds templates out of hostile text (quotes, backslashes, newlines, Python
code, the generator's own identifiers) and checks the generated source token
by token: no string literal but f-strings of names alone, no name the
generator did not write (a ``_K<i>`` only for an entry of the table), no
number but its own few.
"""

from __future__ import annotations

import io
import json
import keyword
import random
import re
import tokenize
from typing import Any

import pytest

from hub_stream.templating import TemplateRenderError, TemplateSyntaxError, compile_template
from hub_stream.templating.codegen import RUNTIME, Unsupported, generate
from hub_stream.templating.parser import parse

HOSTILE = [
    "x", "a b", "__import__('os').system('id')", "K", "K[0]", "_K0", "_K99999", "_c0", "U", "_esc", "exec", "eval", "render",
    '"', "'", '"""', "\\", "\\n", "\n", "#", ")", "(", "{", "}", ";", "lambda: 0", "import os", "é", "𝄞",
    "\x00", "\u2028", "1e9", "0x1f", "class", "def", "return", "_v1", "_s2", "__class__", "None", "True",
]  # fmt: skip
NET_CALLS = ["String.Append", "String.Contains", "Math.Add", "[String.Replace]", "String.Join", "Regex.IsMatch"]
GENERATED_NAME = re.compile(r"_(?:v|s|c|d|k|m|i|key|p|t)\d+")
OWN_NAMES = {
    "get", "append", "isprintable", "is_integer", "render", "_n", "_next", "_cap", "_deadline", "_data", "_esc",
    "_c0", "_d0", "_json", "_err", "_out", "_rest", "_uses", "keys", "isdisjoint",
    "data", "helpers", "partials", "escape", "max_output", "time_limit", *RUNTIME,
    "render_envelope", "_envelope", "_root_key", "_data_name", "_bound_esc", "_bound_json", "_rest_envelope",
}  # fmt: skip
FSTRING_FIELD = re.compile(r"\{(\w+)\}")
FSTRING = re.compile(r"f'(?:\{\w+\})+'")
CONSTANT = re.compile(r"_K(\d+)")
OWN_NUMBERS = {"0", "1", "255"}


def _segment(rng: random.Random) -> str:
    text = rng.choice(HOSTILE)
    return "[" + text.replace("]", "") + "]"


def _string(rng: random.Random) -> str:
    text = rng.choice(HOSTILE).replace('"', "")
    return '"' + text + '"'


def _path(rng: random.Random, params: list[str]) -> str:
    kind = rng.randrange(8)
    if kind == 0 and params:
        return rng.choice(params) + "." + _segment(rng)
    if kind == 1:
        return "@" + rng.choice(["index", "key", "first", "last", "root", "event", "../index"]) + "." + _segment(rng)
    if kind == 2:
        return "../" + _segment(rng)
    if kind == 3:
        return "this"
    return ".".join(_segment(rng) for _ in range(rng.randint(1, 3)))


def _value(rng: random.Random, params: list[str]) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return _string(rng)
    if kind == 1:
        return str(rng.choice([0, 7, -3, 1.5, 123456]))
    if kind == 2:
        return f"(lookup {_path(rng, params)} {_string(rng)})"
    if kind == 3:
        return f"(json {_path(rng, params)})"
    if kind == 4:
        return f"({rng.choice(NET_CALLS)} {_path(rng, params)} {_string(rng)})"
    return _path(rng, params)


def _template(rng: random.Random, depth: int = 0, params: list[str] | None = None) -> str:
    params = params or []
    out = []
    for _ in range(rng.randint(1, 5)):
        kind = rng.randrange(9 if depth < 3 else 5)
        if kind == 0:
            out.append(rng.choice(HOSTILE).replace("{", "(").replace("}", ")"))
        elif kind == 1:
            out.append("{{" + _path(rng, params) + "}}")
        elif kind == 2:
            out.append("{{{" + _path(rng, params) + "}}}")
        elif kind == 3:
            out.append("{{json " + _value(rng, params) + "}}")
        elif kind == 4 and rng.random() < 0.5:
            out.append("{{lookup " + _path(rng, params) + " " + _value(rng, params) + "}}")
        elif kind == 4:
            out.append("{{" + rng.choice(NET_CALLS) + " " + _value(rng, params) + " " + _value(rng, params) + "}}")
        elif kind == 5:
            zero = " includeZero=" + _value(rng, params) if rng.random() < 0.3 else ""
            chain = "".join("{{else if " + _value(rng, params) + "}}" + _template(rng, depth + 1, params) for _ in range(rng.randint(0, 2)))
            out.append("{{#if " + _value(rng, params) + zero + "}}" + _template(rng, depth + 1, params) + chain + "{{else}}x{{/if}}")
        elif kind == 6:
            out.append("{{#unless " + _value(rng, params) + "}}" + _template(rng, depth + 1, params) + "{{/unless}}")
        elif kind == 7:
            names = ["item", "i"][: rng.randint(0, 2)]
            as_ = f" as |{' '.join(names)}|" if names else ""
            out.append("{{#each " + _path(rng, params) + as_ + "}}" + _template(rng, depth + 1, params + names) + "{{else}}none{{/each}}")
        else:
            out.append("{{#with " + _path(rng, params) + " as |w|}}" + _template(rng, depth + 1, [*params, "w"]) + "{{/with}}")
    return "".join(out)


def _check_name(name: str, constants: list[Any]) -> None:
    constant = CONSTANT.fullmatch(name)
    if constant:
        assert int(constant.group(1)) < len(constants), name
        return
    ok = keyword.iskeyword(name) or name in OWN_NAMES or GENERATED_NAME.fullmatch(name)
    assert ok, f"a name the generator did not write: {name!r}"


def _check_source(source: str, constants: list[Any]) -> None:
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.STRING:
            # The only string the generator writes: an f-string of names alone, f'{_s1}{_K3}'.
            assert FSTRING.fullmatch(tok.string), f"a string literal in generated code: {tok.string!r}"
            for name in FSTRING_FIELD.findall(tok.string):
                _check_name(name, constants)
        if getattr(tokenize, "FSTRING_MIDDLE", None) == tok.type:  # Python 3.12+: the text of an f-string
            raise AssertionError(f"text in a generated f-string: {tok.string!r}")
        if tok.type == tokenize.NAME:
            _check_name(tok.string, constants)
        if tok.type == tokenize.NUMBER:
            assert tok.string in OWN_NUMBERS, tok.string


def test_template_text_enters_generated_code_only_through_the_constants() -> None:
    rng = random.Random(23)
    generated = 0
    for _ in range(400):
        source = _template(rng)
        try:
            code, constants, _ = generate(parse(source))
        except (Unsupported, TemplateSyntaxError):  # a hostile text can break the syntax too
            continue
        generated += 1
        _check_source(code, constants)
    assert generated > 250  # the fuzzing reached the generator, not only the parser


CONTEXTS: list[Any] = [
    {},
    {"a": "t\"e\\x\n", "b": 0, "xs": [1, {"a": "in"}, None], "o": {"a": [1.5, True], "b": {"c": "deep"}}, "n": None},
    {"a": ["l", "m"], "b": 100.0, "xs": {"k1": "v1", "k2": {"a": 2}}, "o": "str", "n": 1e21},
    {"a": {"b": "<&>"}, "b": -0.0, "xs": [], "o": {}, "n": float("nan")},
    ["root", "is", "a", "list"],
    "root string",
]
LANGUAGE = [
    "{{a}}|{{{a}}}|{{a.b}}|{{o.b.c}}|{{xs.length}}|{{xs.[1].a}}|{{this.a}}|{{.}}|{{../a}}|{{@root.a}}|{{@event.X}}|{{@missing}}",
    "{{#each xs}}[{{@index}}{{@key}}{{@first}}{{@last}}:{{this}}{{a}}{{../b}}{{@root.b}}{{@../index}}]{{else}}none{{/each}}",
    "{{#each xs as |x k|}}{{k}}={{json x}}{{#unless @last}},{{/unless}}{{/each}}",
    "{{#each o}}{{@key}}:{{json this}};{{#each this}}<{{@../key}}{{@index}}{{.}}>{{/each}}{{/each}}",
    "{{#if a}}A{{else if b}}B{{else if (lookup o 'a')}}O{{else}}N{{/if}}|{{#unless n}}u{{/unless}}|{{#if b includeZero=true}}z{{/if}}",
    "{{#with o as |w|}}{{w.b.c}}{{b.c}}{{../a}}{{else}}empty{{/with}}|{{#with missing}}x{{else}}nothing{{/with}}",
    "{{json a}}{{json (lookup o 'b')}}{{lookup xs 0}}{{lookup o a}}{{json 'lit'}}{{json 12}}{{json null}}",
    "{{#each xs}}{{#with this}}{{a}}{{/with}}{{#if @first}}F{{/if}}{{/each}}",
    "{{String.Append a b}}|{{{String.Append a '&'}}}|{{Math.Add b 2}}|{{#if (String.Contains a 'e')}}E{{/if}}|{{String.Join xs '-'}}",
    "{{#each xs}}{{Math.Multiply @index 1.5}},{{String.ToUpper ../a}}{{/each}}|{{Boolean.Not n}}|{{json (Math.Divide b 4)}}",
    "{{json xs}}|{{json o}}|{{json n}}|{{json b}}|{{#if b includeZero=true}}z{{/if}}{{#unless n includeZero=true}}-{{/unless}}",
]


@pytest.mark.parametrize("source", LANGUAGE)
@pytest.mark.parametrize("escape", ["json", "html"])
def test_native_prints_what_the_closures_print(source: str, escape: str) -> None:
    template = compile_template(source)
    assert template._native is not None, "expected a native program"
    for data in [{"event": {"X": "ev\"ent"}}, {"root": {"a": "data's root"}, "event": None}, None]:  # a root in the data is @root
        for context in CONTEXTS:
            native = _outcome(lambda: template.render(context, data=data, escape=escape))  # noqa: B023 - called at once
            closures = _outcome(lambda: template._render_general(context, data, None, None, template_escape(escape), 1 << 20, 1.0))  # noqa: B023
            assert native == closures, (source, context, data)


def template_escape(name: str) -> Any:
    from hub_stream.templating.template import ESCAPES

    return ESCAPES[name]


def test_helpers_that_shadow_a_used_name_go_to_the_closures() -> None:
    template = compile_template("{{#each xs}}{{name}}{{/each}}|{{json a}}")
    assert template._native is not None
    context = {"xs": [{"name": "n"}], "a": 1}
    assert template.render(context) == "n|1"
    helpers = {"name": lambda options: "helper", "json": lambda value, options: "J"}
    assert template.render(context, helpers=helpers) == "helper|J"
    assert template.render(context, helpers={"other": lambda options: "x"}) == "n|1"


def test_limits_hold_and_say_where() -> None:
    template = compile_template("{{#each xs}}\n  {{../s}}{{/each}}")
    assert template._native is not None
    with pytest.raises(TemplateRenderError, match="line 2, column 3: output larger than 1000 characters"):
        template.render({"xs": list(range(100)), "s": "x" * 100}, max_output=1000)
    with pytest.raises(TemplateRenderError, match="line 1, column 1: render took longer"):
        template.render({"xs": list(range(1000)), "s": "x"}, time_limit=-1)


def test_outside_the_covered_language_there_is_no_native_program() -> None:
    for source in ["{{> p}}", "{{#custom}}x{{/custom}}", "{{helper a}}", "{{#if a}}{{log 'x'}}{{/if}}", "{{#*inline 'p'}}x{{/inline}}"]:
        assert compile_template(source)._native is None, source
    assert json.loads(compile_template('{"a": {{#if a}}1{{else}}2{{/if}}}').render({})) == {"a": 2}


def _outcome(render: Any) -> str:
    try:
        return "ok: " + str(render())
    except TemplateRenderError as exc:
        return f"error at {exc.line},{exc.column}: {exc.reason}"


def test_helper_failures_say_the_same_as_the_closures() -> None:
    for source in ["x\n {{Math.Add a 'nan-text'}}", "{{#if (String.Repeat a 2000000000)}}y{{/if}}", "{{#each xs}}\n{{Math.Divide 1 this}}{{/each}}"]:
        template = compile_template(source)
        assert template._native is not None, source
        context = {"a": "x", "xs": [1, "zero?"]}
        native = _outcome(lambda: template.render(context))  # noqa: B023 - called at once
        closures = _outcome(lambda: template._render_general(context, None, None, None, template_escape("html"), 1 << 20, 1.0))  # noqa: B023
        assert native == closures, source


def test_native_prints_what_the_closures_print_on_the_spec_suite() -> None:
    """Every handlebars.js spec case a native program takes renders as the closures render it."""
    from test_handlebars_spec import FILES, SPEC_DIR, _decode, skip_reason

    compared = 0
    for name in FILES:
        for case in json.loads((SPEC_DIR / f"{name}.json").read_text())["cases"]:
            if skip_reason(case) or case["helpers"] or case["partials"]:
                continue
            try:
                template = compile_template(case["template"])
            except TemplateSyntaxError:
                continue
            if template._native is None:
                continue
            data = case["runtimeOptions"].get("data")
            data = data if isinstance(data, dict) else None
            context = _decode(case["input"])
            for escape in ("html", "json"):
                native = _outcome(lambda: template.render(context, data=data, escape=escape))  # noqa: B023
                closures = _outcome(lambda: template._render_general(context, data, None, None, template_escape(escape), 1 << 20, 1.0))  # noqa: B023
                assert native == closures, case["id"]
            compared += 1
    assert compared > 100  # the native program covers much of the suite


def test_the_source_check_refuses_text_in_an_f_string() -> None:
    """The checker accepts the generator's f-strings of fields only: text or an unknown name in one fails."""
    _check_source("_s1 = f'{_K0}{_s2}'\n", ["x"])
    for source in ["_s1 = f'{_K0}x{_s2}'\n", "_s1 = f'{os}'\n", "_s1 = f'{_K3}'\n", "_s1 = 'x'\n", "_s1 = K[0]\n", "_s1 = _K1\n"]:
        with pytest.raises(AssertionError):
            _check_source(source, ["x"])


def test_doubles_print_the_same_from_the_table_of_printed_doubles() -> None:
    """{{json x}} of a double: the first render prints it, later ones take its text from a table; both as the closures."""
    from hub_stream.templating import values

    template = compile_template('{"a": {{json a}}, "b": [{{#each xs}}{{json this}}{{#unless @last}},{{/unless}}{{/each}}]}')
    assert template._native is not None
    doubles = [0.0, -0.0, 2.5, -2.5, 100.0, 1e21, 1e20, 1.5e300, 5e-324, float("nan"), float("inf"), float("-inf"), 0.1 + 0.2]
    contexts = [{"a": x, "xs": [x, -x]} for x in doubles] + [{"a": x, "xs": doubles} for x in (-0.0, 0.0)]
    for _ in range(2):  # printed, then found in the table
        for context in contexts:
            closures = template._render_general(context, None, None, None, template_escape("json"), 1 << 20, 1.0)
            assert template.render(context, escape="json") == closures, context
    assert template.render({"a": -0.0, "xs": [0.0]}, escape="json") == '{"a": 0, "b": [0]}'
    values.FLOAT_TEXTS.clear()
    many = [i + 0.25 for i in range(values.MAX_FLOAT_TEXTS + 10)]  # more than the table holds: it starts again
    text = template.render({"a": 1.0, "xs": many}, escape="json")
    assert json.loads(text)["b"] == many
    assert text == template._render_general({"a": 1.0, "xs": many}, None, None, None, template_escape("json"), 1 << 20, 1.0)
    assert len(values.FLOAT_TEXTS) <= values.MAX_FLOAT_TEXTS


def test_render_is_a_function_with_the_documented_signature() -> None:
    """Template.render is the native program's own function, or the flat one's: same keywords, same answers."""
    for source in ["{{#if a}}{{a}}{{/if}}", "{{a}}" * 12, "{{> p}}"]:  # native, flat, closures
        template = compile_template(source)
        context = {"a": 'x"'}
        partials = {"p": "{{a}}"}
        text = template.render(context, partials=partials)
        assert text.startswith("x&quot;")
        assert text == template.render(context, data=None, helpers=None, partials=partials, escape="html", max_output=1000, time_limit=1.0)
        with pytest.raises(TypeError):
            template.render(context, None)  # every option is by keyword
        with pytest.raises(ValueError, match="escape must be one of"):
            template.render(context, partials=partials, escape="xml")
        with pytest.raises(TemplateRenderError, match="output larger than 3 characters"):
            template.render({"a": "long text"}, partials=partials, max_output=3)


@pytest.mark.parametrize("source", LANGUAGE)
def test_a_renderer_of_an_envelope_prints_what_render_prints(source: str) -> None:
    """Template.renderer: the native program as a function of the event, as render with the event as @event."""
    template = compile_template(source)
    render_event = template.renderer("Data", "event", "json")
    assert render_event.__name__ == "render_envelope"  # the native program's own function of the envelope
    for context in CONTEXTS:
        event = {"Data": context, "X": 'ev"ent'}
        closures = _outcome(lambda: template._render_general(context, {"event": event}, None, None, template_escape("json"), 1 << 20, 1.0))  # noqa: B023
        assert _outcome(lambda: render_event(event)) == closures, (source, context)  # noqa: B023
    assert _outcome(lambda: render_event({})) == _outcome(lambda: template.render(None, data={"event": {}}, escape="json"))


def test_a_renderer_hands_what_its_program_does_not_take_to_the_closures() -> None:
    cases = [  # source, event, what it prints or the error
        ("{{#each xs}}\n  {{../s}}{{/each}}", {"D": {"xs": list(range(2000)), "s": "x" * 600}}, "error at 2,3: output larger than 1048576 characters"),
        ("x\n {{Math.Add a 'nan-text'}}", {"D": {"a": 1}}, "error at 2,2: helper 'Math.Add': argument 2"),
        ("{{@root.a}}|{{@event.a}}|{{a}}", {"D": {"a": "r"}, "a": "e"}, "ok: r|e|r"),
        ("{{@root.a}}|{{a}}", {"D": {"a": "r"}}, "ok: r|r"),
    ]
    for source, event, expected in cases:
        template = compile_template(source)
        assert template._native is not None, source
        assert expected in _outcome(lambda: template.renderer("D", "event")(event)), source  # noqa: B023
        assert expected in _outcome(lambda: template.render(event.get("D"), data={"event": event}, escape="json")), source  # noqa: B023
    # @root named by the data: not the envelope function (render's data may not name it either)
    template = compile_template("{{@root.a}}")
    assert template.renderer("D", "root")({"D": {"a": 1}, "a": 2}) == template.render({"a": 1}, data={"root": {"a": 2}}, escape="json")
    with pytest.raises(ValueError, match="escape must be one of"):
        template.renderer("D", "event", "xml")


def test_the_cap_holds_when_if_blocks_leave_their_values_to_the_text_around_them() -> None:
    """Outside loops an if's branches are counted with the text around it: over the cap, the closures say where."""
    source = "a{{s}}{{#if t}}{{s}}{{#unless f}}{{s}}{{s}}{{/unless}}{{else}}-{{/if}}" + "{{#if t}}\n{{s}}{{/if}}" * 12 + "{{s}}z"
    template = compile_template(source)
    assert template._native is not None
    for cap in [0, 5, 99, 100, 101, 250, 399, 1000, 1500, 1600, 1713, 1714, 1715, 5000]:
        context = {"s": "x" * 100, "t": True, "f": False}
        native = _outcome(lambda: template.render(context, max_output=cap))  # noqa: B023 - called at once
        closures = _outcome(lambda: template._render_general(context, None, None, None, template_escape("html"), cap, 1.0))  # noqa: B023
        assert native == closures, cap


def test_a_template_over_the_envelope_size_renders_rows_through_render() -> None:
    from hub_stream.templating.codegen import MAX_ENVELOPE_SOURCE

    source = "{{#if a}}{{a}}{{/if}}" + "x" * MAX_ENVELOPE_SOURCE
    template = compile_template(source)
    assert template._native is not None
    render_event = template.renderer("D", "event")
    assert render_event.__name__ != "render_envelope"
    assert render_event({"D": {"a": 'q"'}}) == template.render({"a": 'q"'}, data={"event": {}}, escape="json") == 'q\\"' + "x" * MAX_ENVELOPE_SOURCE


def test_json_of_objects_and_arrays_escapes_lone_surrogates_as_the_closures_do() -> None:
    template = compile_template("{{json o}}|{{json xs}}|{{#each xs}}{{json this}}{{/each}}")
    assert template._native is not None
    context = {"o": {"k\ud800": ["\udfff", 1.5, {"n": None}]}, "xs": [{"a": "\ud83d"}, ["x", "\ud800y"]]}
    native = template.render(context, escape="json")
    assert native == template._render_general(context, None, None, None, template_escape("json"), 1 << 20, 1.0)
    assert "\\ud800" in native and "\\udfff" in native and "\\ud83d" in native
    native.encode("utf-8")  # no lone surrogate left in the text
