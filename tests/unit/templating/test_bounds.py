"""Every limit holds as the work grows, and says where: line and column, never a bare RecursionError."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from hub_stream.templating import (
    TemplateRenderError,
    TemplateSyntaxError,
    compile_template,
    lexer,
    parse_payload_template,
)
from hub_stream.templating.values import escape_json, json_literal

BIG = "x" * 100_000


def peak_bytes(work: Callable[[], Any]) -> int:
    """The most memory ``work`` held at once (tracemalloc: counted, not timed)."""
    tracemalloc.start()
    try:
        work()
    except TemplateRenderError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    "source",
    [
        "{{s}}" * 20_000,  # plain mustaches: the flat program's shape, but too many for it
        "{{s}}" * 30,  # the flat program
        "{{{s}}}" * 30,
        "{{#if s}}" + "{{s}}" * 20_000 + "{{/if}}",  # the general program
        "{{#each xs}}{{../s}}{{/each}}",
        "{{#each xs}}" + "t" * 50_000 + "{{/each}}",  # text alone
        "{{json s}}" * 30,
    ],
)
def test_output_cap_stops_the_render_as_it_grows(source: str) -> None:
    template = compile_template(source)
    context = {"s": BIG, "xs": list(range(100_000))}
    with pytest.raises(TemplateRenderError, match="output larger than 1048576 characters") as caught:
        template.render(context, escape="json")
    assert caught.value.line == 1 and caught.value.column is not None
    assert peak_bytes(lambda: template.render(context, escape="json")) < 50 * 1024 * 1024


def test_output_cap_counts_what_a_helper_makes() -> None:
    def repeat(text: str, options: Any) -> str:
        return text * 1000

    with pytest.raises(TemplateRenderError, match="output larger than 10000 characters"):
        compile_template("{{#each xs}}{{repeat ../s}}{{/each}}").render({"s": "ab", "xs": [1] * 10}, helpers={"repeat": repeat}, max_output=10_000)


def test_time_limit_covers_templates_without_blocks() -> None:
    template = compile_template("{{s}}" * 60)  # too many for the flat program: the general one reads the clock as output grows
    with pytest.raises(TemplateRenderError, match="time limit") as caught:
        template.render({"s": BIG}, time_limit=-1, max_output=100_000_000)
    assert caught.value.line == 1


def test_time_limit_covers_compilation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexer, "COMPILE_TIME_LIMIT_S", -1.0)
    with pytest.raises(TemplateSyntaxError, match="compiling took longer") as caught:
        compile_template("{{a}}\n" * 1000)
    assert caught.value.line > 1


def test_deep_subexpressions_are_a_syntax_error_with_position() -> None:
    source = "line one\n  {{x " + "(x " * 500 + ")" * 500 + "}}"
    with pytest.raises(TemplateSyntaxError, match="subexpressions nested deeper than 50") as caught:
        compile_template(source)
    assert (caught.value.line, caught.value.column) == (2, 3)


def test_long_else_if_chains_work_up_to_the_limit() -> None:
    links = "".join(f"{{{{else if b{i}}}}}{i}" for i in range(999))
    template = compile_template("{{#if a}}a" + links + "{{else}}none{{/if}}")
    assert template.render({"b998": True}) == "998"
    assert template.render({"b3": 1}) == "3"
    assert template.render({}) == "none"
    with pytest.raises(TemplateSyntaxError, match="more than 1000") as caught:
        compile_template("{{#if a}}a" + "{{else if b}}b" * 1001 + "{{/if}}")
    assert caught.value.column == len("{{#if a}}a") + len("{{else if b}}b") * 1000 + 1


def test_else_chain_with_other_helpers_still_chains() -> None:
    source = "{{#if a}}A{{else each xs}}{{this}}{{else with o}}{{n}}{{else}}none{{/if}}"
    template = compile_template(source)
    assert template.render({"xs": [1, 2]}) == "12"
    assert template.render({"o": {"n": "N"}}) == "N"
    assert template.render({}) == "none"


def test_deep_nesting_is_a_syntax_error_with_position() -> None:
    with pytest.raises(TemplateSyntaxError, match="nested deeper than 100") as caught:
        compile_template("{{#if a}}\n" * 150 + "{{/if}}" * 150)
    assert caught.value.line == 102


def test_render_nesting_is_a_render_error_with_position() -> None:
    with pytest.raises(TemplateRenderError, match="deeper than 64") as caught:
        compile_template("\n  {{> loop}}").render({}, partials={"loop": "x{{> loop}}"})
    assert caught.value.line is not None and caught.value.column is not None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{lookup}}", "helper 'lookup': argument 1 (value) is missing; it takes 2 (value, key)"),
        ("{{lookup o}}", "helper 'lookup': argument 2 (key) is missing"),
        ("{{#if a b}}x{{/if}}", "helper 'if': argument 2 is one too many; it takes 1 (conditional)"),
        ("{{#each}}x{{/each}}", "helper 'each': argument 1 (items) is missing"),
        ("x\n {{#with}}x{{/with}}", "line 2, column 2: helper 'with': argument 1 (context) is missing"),
    ],
)
def test_helper_errors_name_the_helper_and_the_argument(source: str, message: str) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        compile_template(source).render({"o": {}})
    assert message in str(caught.value)
    assert "positional" not in str(caught.value) and "helper_" not in str(caught.value)


def test_registered_helper_arity_is_reported_in_template_terms() -> None:
    def add(a: Any, b: Any, options: Any) -> Any:
        return a + b

    with pytest.raises(TemplateRenderError, match=r"line 1, column 4: helper 'add': argument 2 \(b\) is missing"):
        compile_template("x: {{add 1}}").render({}, helpers={"add": add})


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\ud83d\ude00", 'q"\ud800\n'])
def test_json_escaping_never_makes_text_without_utf8(text: str) -> None:
    for out in (escape_json(text), json_literal(text), json_literal({"k": [text]})):
        out.encode("utf-8")  # no lone surrogate left
    template = parse_payload_template('{"a": "{{s}}", "b": {{json s}}, "c": "\\ud800"}', import_process_id=1)
    row = template.render_row({"EventId": "E", "PublisherEventData": {"s": text}})
    assert row is not None
    row.line.encode("utf-8")
    assert "\\ud800" in row.line
