"""Handlebars.Net.Helpers on untrusted templates: bounded work, linear-time regex, unknown names refused at save."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from hub_stream.subscriptions.records import template_problem
from hub_stream.templating import (
    PayloadTemplateError,
    TemplateRenderError,
    compile_template,
    parse_payload_template,
)
from hub_stream.templating.net_helpers.dates import format_datetime, from_datetime, parse_exact
from hub_stream.templating.net_helpers.errors import MAX_TEXT
from hub_stream.templating.net_helpers.numbers import double_text, format_number, parse_number


def render(template: str, context: Any = None) -> str:
    return compile_template(template).render(context or {})


@pytest.mark.parametrize(
    "template",
    [
        '{{String.Repeat "abcdefgh" 1000000}}',
        '{{String.PadLeft "x" 2000000000 "0"}}',
        '{{String.Replace s "a" "0123456789012345678901234567890123456789"}}',
        '{{String.Join xs "0123456789012345678901234567890123456789"}}',
        '{{String.Repeat (String.Repeat "ab" 500000) 3}}',
    ],
)
def test_text_a_helper_builds_is_capped_before_it_is_built(template: str) -> None:
    context = {"s": "a" * 100_000, "xs": list(range(100_000))}
    # CPU time of this process: the bound is about the work done, and other
    # processes on a busy CI machine must not make it fail.
    started = time.process_time()
    with pytest.raises(TemplateRenderError, match=f"more than the limit of {MAX_TEXT}"):
        render(template, context)
    assert time.process_time() - started < 1.0


def test_huge_numbers_stay_64_bit_or_double() -> None:
    big = 10**400
    assert render("{{Math.Multiply a a}}", {"a": 2**62}) == "0"  # wraps as C#'s long does
    assert render("{{Math.Add a 1}}", {"a": big}) == "Infinity"  # beyond 64 bits: a double
    assert render('{{Math.Power 10 400}}|{{Math.Add "1e999999999" 1}}', {}) == "Infinity|Infinity"


def test_catastrophic_pattern_runs_in_linear_time() -> None:
    subject = "a" * 50_000 + "!"
    started = time.process_time()  # CPU, not wall-clock: a backtracking engine needs years of it here
    assert render('{{Regex.IsMatch s "^(a+)+$"}}|{{Regex.IsMatch s "(a|aa)*b"}}', {"s": subject}) == "False|False"
    assert time.process_time() - started < 1.0


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(?=a)a", "not supported by the linear-time engine (RE2)"),
        ("(?<!a)b", "not supported by the linear-time engine (RE2)"),
        (r"(a)\1", "not supported by the linear-time engine (RE2)"),
        ("(?>a+)b", "not supported by the linear-time engine (RE2)"),
        ("a" * 5000, "longer than 4096 characters"),
    ],
)
def test_regex_features_re2_lacks_are_refused_with_a_reason(pattern: str, reason: str) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render(f'{{{{Regex.IsMatch "a" "{pattern}"}}}}')
    assert "helper 'Regex.IsMatch': argument 2 (regexPattern): " in str(info.value) and reason in str(info.value)


@pytest.mark.parametrize(("flags", "option"), [("x", "IgnorePatternWhitespace (x)"), ("r", "RightToLeft (r)")])
def test_regex_options_re2_lacks_are_refused(flags: str, option: str) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render(f'{{{{Regex.IsMatch "a" "a" "{flags}"}}}}')
    assert f"argument 3 (options): the option {option} is not supported" in str(info.value)


@pytest.mark.parametrize(
    ("template", "line", "column", "name"),
    [
        ('{"a": "{{nope x}}"}', 1, 8, "nope"),
        ('{"a": 1,\n "b": "{{String.ToUpperCase name}}"}', 2, 8, "String.ToUpperCase"),
        ('{"a": "{{String.Uppercase (Math.Ad 1 2)}}"}', 1, 8, "Math.Ad"),
        ('{{#each xs}}\n  {{#Foo.Bar x}}{{/Foo.Bar}}\n{{/each}}', 2, 3, "Foo.Bar"),
        ("{{> row (Missing 1)}}", 1, 1, "Missing"),
    ],
)
def test_unknown_helper_is_refused_at_save_with_line_and_column(template: str, line: int, column: int, name: str) -> None:
    with pytest.raises(PayloadTemplateError) as info:
        parse_payload_template({"COURSE": {"importProcessId": 1, "batchRowTemplate": template}})
    assert (info.value.entry, info.value.line, info.value.column) == ("COURSE", line, column)
    assert f"unknown helper {name!r}" in str(info.value)


def test_unknown_helper_is_a_422_problem_naming_line_and_column() -> None:
    problem = template_problem({"_default": {"importProcessId": 1, "batchRowTemplate": '{"x": "{{Strng.Uppercase a}}"}'}}, None)
    assert problem is not None and problem["error"] == "invalid_template"
    assert problem["details"]["line"] == 1 and problem["details"]["column"] == 8
    assert "unknown helper 'Strng.Uppercase'" in problem["message"]


@pytest.mark.parametrize(
    "template",
    [
        '{"a": "{{name}}", "b": "{{course.code}}", "c": {{json x}}}',  # plain lookups, dotted too
        '{{#unknownSection}}x{{/unknownSection}}{{String.Uppercase (name)}}',  # a name alone is a lookup
        '{"a": "{{string.uppercase name}}", "b": {{Math.Add 1 2}}}',
        "{{#each xs}}{{#if (Boolean.Not @first)}},{{/if}}{{this}}{{/each}}",
    ],
)
def test_templates_using_known_helpers_or_lookups_save(template: str) -> None:
    parse_payload_template(template, import_process_id=1)


# --- .NET format strings, checked against documented .NET output (invariant culture) --------

WHEN = from_datetime(datetime(2020, 4, 15, 23, 59, 58, 123456), extra_ticks=7)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("d", "04/15/2020"),
        ("D", "Wednesday, 15 April 2020"),
        ("f", "Wednesday, 15 April 2020 23:59"),
        ("g", "04/15/2020 23:59"),
        ("G", "04/15/2020 23:59:58"),
        ("M", "April 15"),
        ("o", "2020-04-15T23:59:58.1234567"),
        ("R", "Wed, 15 Apr 2020 23:59:58 GMT"),
        ("s", "2020-04-15T23:59:58"),
        ("t", "23:59"),
        ("T", "23:59:58"),
        ("u", "2020-04-15 23:59:58Z"),
        ("Y", "2020 April"),
        ("yyyy-MM-dd HH:mm:ss.fff", "2020-04-15 23:59:58.123"),
        ("yy/M/d h:m:s tt", "20/4/15 11:59:58 PM"),
        ("ddd, MMM d", "Wed, Apr 15"),
        ("HH:mm:ss.FFFFFFF", "23:59:58.1234567"),
        ("'Day' dd 'of' MMMM", "Day 15 of April"),
        (r"\Y\e\a\r yyyy", "Year 2020"),
        ("%M", "4"),
        ("yyyy-MM-ddTHH:mm:ssK", "2020-04-15T23:59:58"),
    ],
)
def test_date_format_strings(fmt: str, expected: str) -> None:
    assert format_datetime(WHEN, fmt) == expected


def test_parse_exact_reads_what_format_writes() -> None:
    for fmt in ("yyyy-MM-dd HH:mm:ss", "dd/MM/yyyy", "MMMM d, yyyy h:mm tt", "yyyyMMddHHmmss", "yyyy-MM-ddTHH:mm:ss.fffffffzzz"):
        text = format_datetime(WHEN, fmt)
        assert format_datetime(parse_exact(text, fmt), fmt) == text


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (1.2, "N0", "1"),
        (1.2, "N2", "1.20"),
        (1234567.891, "N2", "1,234,567.89"),
        (0.125, "F2", "0.13"),
        (2.675, "F2", "2.67"),  # the double is 2.67499999…: .NET Core rounds the exact value
        (42, "D5", "00042"),
        (255, "X4", "00FF"),
        (1234.5678, "E", "1.234568E+003"),
        (0.5, "P", "50.00 %"),
        (-1234.5, "C", "(¤1,234.50)"),
        (1234.5678, "G3", "1.23E+03"),
        (1234.5678, "#,##0.0", "1,234.6"),
        (5551234567, "(###) ###-####", "(555) 123-4567"),
        (0.256, "0.0%", "25.6%"),
        (-5, "0;(0)", "(5)"),
        (0, "0.00;-0.00;zero", "zero"),
        (1234567, "#,##0,K", "1,235K"),
    ],
)
def test_number_format_strings(value: float, fmt: str, expected: str) -> None:
    assert format_number(value, fmt) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (0.1 + 0.2, "0.30000000000000004"), (1e15, "1E+15"), (123456789012345.0, "123456789012345"), (1e-5, "1E-05"), (0.0001, "0.0001"), (-0.0, "-0")],
)
def test_doubles_print_as_dotnet_core_prints_them(value: float, text: str) -> None:
    assert double_text(value) == text


@pytest.mark.parametrize(("text", "value"), [("1,000", 1000), ("(5)", -5), ("1e3", 1000), (" 2.5 ", 2.5), ("5-", -5), ("¤7", 7), ("abc", None), ("", None)])
def test_numbers_parse_with_number_styles_any(text: str, value: float | None) -> None:
    assert parse_number(text) == value
