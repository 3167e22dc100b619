"""Handlebars language cases (handlebarsjs.com guide), including those pybars3 gets wrong."""

from __future__ import annotations

from typing import Any

import pytest

from hub_stream.templating import (
    SafeString,
    TemplateRenderError,
    TemplateSyntaxError,
    compile_template,
)


def render(source: str, context: Any = None, **kwargs: Any) -> str:
    return compile_template(source).render({} if context is None else context, **kwargs)


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("{{a.b}} {{a/b}} {{this.a.b}} {{./a.b}}", {"a": {"b": 1}}, "1 1 1 1"),
        ("{{[a b]}} {{x.[0].y}}", {"a b": "sp", "x": [{"y": 7}]}, "sp 7"),
        ("{{#each xs}}{{.}}{{this}}{{/each}}", {"xs": ["a", "b"]}, "aabb"),
        ("{{#each xs}}{{@index}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}},{{/each}}", {"xs": [1, 2, 3]}, "0F,1,2L,"),
        ("{{#each o}}{{@key}}:{{@index}}={{this}} {{/each}}", {"o": {"k": "v", "n": 2}}, "k:0=v n:1=2 "),
        ("{{#each xs as |x i|}}{{i}}-{{x}} {{/each}}", {"xs": ["p", "q"]}, "0-p 1-q "),
        ("{{#each o as |v k|}}{{k}}={{v}};{{/each}}", {"o": {"a": 1}}, "a=1;"),
        ("{{#each xs}}x{{else}}none{{/each}}", {"xs": []}, "none"),
        ("{{#each outer}}{{#each inner}}{{../n}}{{this}}{{/each}}{{/each}}", {"outer": [{"n": "A", "inner": [1, 2]}]}, "A1A2"),
        ("{{#each xs}}{{#each ys}}{{@../index}}{{@index}} {{/each}}{{/each}}", {"xs": [{"ys": [0, 0]}, {"ys": [0]}]}, "00 01 10 "),
        ("{{#with p}}{{n}} {{../top}}{{/with}}", {"p": {"n": "N"}, "top": "T"}, "N T"),
        ("{{#with p as |q|}}{{q.n}}{{/with}}", {"p": {"n": 5}}, "5"),
        ("{{#with missing}}yes{{else}}no{{/with}}", {}, "no"),
        ("{{#if a}}A{{else if b}}B{{else if c}}C{{else}}D{{/if}}", {"c": True}, "C"),
        ("{{#if a}}A{{else if b}}B{{else}}D{{/if}}", {}, "D"),
        ("{{#unless a}}U{{else}}E{{/unless}}", {"a": True}, "E"),
        ("{{#unless a}}U{{else}}E{{/unless}}", {"a": []}, "U"),
        ("{{#if zero}}y{{else}}n{{/if}}{{#if zero includeZero=true}}Y{{/if}}", {"zero": 0}, "nY"),
        ("{{#if e}}y{{else}}n{{/if}}{{#if o}}O{{/if}}", {"e": [], "o": {}}, "nO"),
        ("{{#sec}}[{{v}}]{{/sec}}", {"sec": [{"v": 1}, {"v": 2}]}, "[1][2]"),
        ("{{#sec}}[{{v}}]{{/sec}}", {"sec": {"v": 3}}, "[3]"),
        ("{{^sec}}none{{/sec}}", {"sec": False}, "none"),
        ("{{#x}}a{{^}}b{{/x}}", {"x": None}, "b"),
        ("{{lookup o k}} {{lookup xs 1}}", {"o": {"z": 9}, "k": "z", "xs": ["a", "b"]}, "9 b"),
        ("{{#if (lookup o k)}}yes{{/if}}", {"o": {"z": 1}, "k": "z"}, "yes"),
        ("{{{raw}}} {{&raw}} {{raw}}", {"raw": "<b>"}, "<b> <b> &lt;b&gt;"),
        ("{{! a comment }}{{!-- a {{block}} comment --}}x", {}, "x"),
        ("a {{~x~}} b", {"x": "X"}, "aXb"),
        ("{{n}} {{f}} {{big}} {{small}} {{t}} {{nul}} {{undef}}|", {"n": 100.0, "f": 1.5, "big": 1e21, "small": 1e-7, "t": False, "nul": None}, "100 1.5 1e+21 1e-7 false  |"),
        ("{{xs}} {{o}}", {"xs": [1, [2, 3], None, "s"], "o": {"a": 1}}, "1,2,3,,s [object Object]"),
        ("{{@root.top}}{{#each xs}}{{@root.top}}{{/each}}", {"top": "T", "xs": [1]}, "TT"),
        ("{{s.length}} {{xs.length}}", {"s": "abcd", "xs": [1, 2]}, "4 2"),
        # literals in a name's place are names, as in handlebars.js
        ("{{true}} {{false}} {{null}} {{undefined}} {{\"str\"}} {{12}}|", {}, "     |"),
        ("{{true}} {{\"a b\"}} {{12}}", {"true": "T", "a b": "AB", "12": "twelve"}, "T AB twelve"),
        ("\\{{not}} {{x}}", {"x": 1}, "{{not}} 1"),
    ],
)
def test_language(source: str, context: Any, expected: str) -> None:
    assert render(source, context) == expected


def test_standalone_lines_are_removed() -> None:
    source = "<ul>\n  {{#each xs}}\n  <li>{{this}}</li>\n  {{/each}}\n</ul>\n"
    assert render(source, {"xs": [1, 2]}) == "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>\n"


def test_partials_with_context_hash_blocks_and_inline() -> None:
    partials = {"person": "{{name}} ({{role}})", "layout": "<main>{{> @partial-block}}</main>"}
    assert render("{{> person p role=\"admin\"}}", {"p": {"name": "Ann"}}, partials=partials) == "Ann (admin)"
    assert render("{{#> layout}}body {{x}}{{/layout}}", {"x": 1}, partials=partials) == "<main>body 1</main>"
    assert render("{{#> missing}}fallback{{/missing}}", {}) == "fallback"
    assert render('{{#*inline "row"}}<{{this}}>{{/inline}}{{#each xs}}{{> row}}{{/each}}', {"xs": [1, 2]}) == "<1><2>"
    assert render('{{> (lookup . "which")}}', {"which": "person", "name": "Bo"}, partials=partials) == "Bo ()"
    # (which) calls a helper, as in handlebars.js: a value there is an error, a missing name too
    with pytest.raises(TemplateRenderError, match="'which' is not a helper"):
        render("{{> (which)}}", {"which": "person"}, partials=partials)
    with pytest.raises(TemplateRenderError, match="line 1, column 3: The partial '' could not be found"):
        render("x {{> (nothing)}}", {}, partials=partials)


def test_registered_helpers_inline_and_block() -> None:
    def shout(text: Any, options: Any) -> str:
        return str(text).upper() + options.hash.get("end", "!")

    def twice(options: Any) -> str:
        return options.fn(options.context) + options.fn(options.context)

    def bold(options: Any) -> SafeString:
        return SafeString("<b>" + options.fn(options.context) + "</b>")

    helpers = {"shout": shout, "twice": twice, "bold": bold}
    assert render("{{shout name end='?'}}", {"name": "hi"}, helpers=helpers) == "HI?"
    assert render("{{#twice}}{{n}}{{/twice}}", {"n": 1}, helpers=helpers) == "11"
    assert render("{{#bold}}<i>{{/bold}}", {}, helpers=helpers) == "<b><i></b>"
    assert render("{{shout (shout name)}}", {"name": "x"}, helpers=helpers) == "X!!"


def test_json_escape_mode_and_json_helper() -> None:
    ctx = {"s": 'q"b\\s\nt\t\x01<&>', "n": 2.0, "o": {"a": [1, None]}, "u": "é"}
    out = compile_template('{"s":"{{s}}","n":{{json n}},"o":{{json o}},"m":{{json missing}},"u":"{{u}}"}').render(ctx, escape="json")
    assert out == '{"s":"q\\"b\\\\s\\nt\\t\\u0001<&>","n":2,"o":{"a":[1,null]},"m":null,"u":"é"}'
    assert compile_template('{{json s}}').render({"s": 'a"b'}, escape="json") == '"a\\"b"'


def test_missing_helper_with_arguments_is_an_error() -> None:
    with pytest.raises(TemplateRenderError, match="Missing helper: 'nope'"):
        render("{{nope a}}", {"a": 1})
    with pytest.raises(TemplateRenderError, match="could not be found"):
        render("{{> nope}}", {})


@pytest.mark.parametrize(
    ("source", "line", "column", "reason"),
    [
        ("ok\n  {{#each xs}}", 2, 3, "unclosed block 'each'"),
        ("{{#if a}}x{{/each}}", 1, 11, "does not close 'if'"),
        ("{{/if}}", 1, 1, "without an open block"),
        ("a {{b", 1, 3, "unclosed tag"),
        ("{{!-- never closed", 1, 1, "unclosed comment"),
        ("{{foo (bar}}", 1, 1, "unclosed subexpression"),
        ("{{}}", 1, 1, "empty tag"),
        ("{{else}}", 1, 1, "without an open block"),
    ],
)
def test_syntax_errors_carry_line_and_column(source: str, line: int, column: int, reason: str) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_template(source)
    assert (info.value.line, info.value.column) == (line, column)
    assert reason in info.value.reason
    assert str(info.value).startswith(f"line {line}, column {column}: ")


def test_compiled_templates_are_cached_by_source() -> None:
    assert compile_template("{{a}} cached") is compile_template("{{a}} cached")


def _identity_block(options: Any) -> str:
    return options.fn()


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        # the areas issue 23 found differing from handlebars.js
        ('{{"foo bar"}}|{{12}}|{{true}}|{{[a b]}}', {"foo bar": 1, "12": 2, "true": 3, "a b": 4}, "1|2|3|4"),
        ("\\\\{{foo}} \\{{foo}} \\{{a}}\\{{b}}", {"foo": "F"}, "\\F {{foo}} {{a}}{{b}}"),
        ('{{lookup o "a}}b"}}|{{lookup o \'}}\'}}', {"o": {"a}}b": "x", "}}": "y"}}, "x|y"),
        ("a {{~{foo}~}} b", {"foo": "<F>"}, "a<F>b"),
        ("{{#each xs}}{{#if true}}{{../n}}-{{../../n}}{{/if}}{{/each}}", {"xs": [1], "n": "N", "true": 1}, "N-"),
        ("{{#with o as |me|}}{{#> box}}{{me.v}}{{/box}}{{/with}}", {"o": {"v": "ok"}}, "[ok]"),
        ("{{{{raw}}}} {{x}} {{{{/raw}}}}", {"x": 1}, " {{x}} "),
    ],
)
def test_handlebars_fidelity(source: str, context: Any, expected: str) -> None:
    partials = {"box": "[{{> @partial-block}}]"}
    assert render(source, context, partials=partials, helpers={"raw": _identity_block}) == expected


def test_partials_see_their_own_context_only_through_dot_dot() -> None:
    partials = {"p": "{{name}}/{{../name}}/{{@root.name}}", "[my-partial]": "no", "my-partial": "yes"}
    source = "{{#each xs}}{{> p}} {{/each}}{{> [my-partial]}}"
    assert render(source, {"name": "root", "xs": [{"name": "a"}]}, partials=partials) == "a//root yes"


def test_standalone_partials_keep_their_indent_and_tilde_drops_it() -> None:
    partials = {"p": "one\ntwo\n"}
    assert render("x\n  {{> p}}\ny", {}, partials=partials) == "x\n  one\n  two\ny"
    assert render("x\n  {{~> p}}\ny", {}, partials=partials) == "xone\ntwo\ny"
