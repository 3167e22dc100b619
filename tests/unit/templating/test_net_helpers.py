"""Handlebars.Net.Helpers: the library's own template tests and README examples, as data.

Each case is (template, context, expected output); most come from the
library's test/…/Templates/*TemplateTests.cs and Helpers/*Tests.cs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hub_stream.templating import TemplateRenderError, compile_template
from hub_stream.templating.net_helpers import count_by_category
from hub_stream.templating.net_helpers.dates import NetDateTime
from hub_stream.templating.net_helpers.datetime_helpers import CLOCK
from hub_stream.templating.values import escape_html

NOW = datetime(2020, 4, 15, 23, 59, 58, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pinned_clock() -> Any:
    CLOCK.insert(0, lambda: NOW)
    yield
    CLOCK.pop(0)


def render(template: str, context: Any = None, escape: str = "html") -> str:
    return compile_template(template).render({} if context is None else context, escape=escape)


CASES: list[tuple[str, Any, str]] = [
    # String (StringHelpersTemplateTests)
    ('{{[String.Append] "foo" "bar"}}', None, "foobar"),
    ('{{[String.Append] "foo" \'b\'}}', None, "foob"),
    ('{{[String.Append] "foo" ([String.Append] "a" "b")}}', None, "fooab"),
    ('{{String.Append "foo" "bar"}}', None, "foobar"),
    ('{{String.Coalesce null " " "" "a" "b"}}', None, "a"),
    ('{{String.Coalesce "" " " "" "a" "b"}}', None, "a"),
    ('{{[String.Equal] "foo" "bar"}}', None, "False"),
    ('{{[String.Equal] "foo" "foo"}}', None, "True"),
    ('{{[String.Equal] "ab" ([String.Append] "a" "b")}}', None, "True"),
    ('{{#String.Equal "foo" "foo"}}yes{{else}}no{{/String.Equal}}', None, "yes"),
    ('{{#String.Equal "foo" "bar"}}yes{{else}}no{{/String.Equal}}', None, "no"),
    ('{{#String.Equal viewData.page "home"}}yes{{else}}no{{/String.Equal}}', {"abc": "xyz"}, "no"),
    ('{{[String.Equal] "foo" "Foo" "OrdinalIgnoreCase"}}', None, "True"),
    ('{{[String.Equal] "foo" "Foo" "5"}}', None, "True"),
    ('{{[String.Equals] "foo" "Foo" 5}}', None, "True"),
    ('{{[String.Equal] "foo" "Foo" "Ordinal"}}', None, "False"),
    ('{{[String.NotEqual] "foo" "bar"}}', None, "True"),
    ('{{[String.NotEqual] "ab" ([String.Append] "a" "b")}}', None, "False"),
    ('{{#String.NotEqual "foo" "bar"}}yes{{else}}no{{/String.NotEqual}}', None, "yes"),
    ('{{[String.NotEquals] "foo" "Foo" 5}}', None, "False"),
    ('{{String.Format x "yyyy-MMM-dd"}}', {"x": "2020-04-15T23:59:58"}, "2020-04-15T23:59:58"),
    ('{{String.Format (DateTime.Now) "yyyy-MM-dd"}}', None, "2020-04-15"),
    ('{{String.Format (DateTime.Parse x) "yyyy-MMM-dd"}}', {"x": "2020-04-15T23:59:58"}, "2020-Apr-15"),
    ('{{String.Format 1.2 "N2"}}|{{String.Format 1234567.891 "N0"}}|{{String.Format 42 "D5"}}', None, "1.20|1,234,568|00042"),
    ('{{String.Format n "0.00"}}', {"n": 3.14159}, "3.14"),
    ("{{String.Format null \"x\"}}", None, ""),
    ('{{String.First (String.Split "a<br />b<br />c" "<br />")}}', None, "a"),
    ('{{String.First (String.Split "single" ";")}}', None, "single"),
    ('{{String.Last (String.Split "a<br />b<br />c" "<br />")}}', None, "c"),
    ('{{String.First (String.Split yourField "<br />")}}', {"yourField": "Honors Algebra 2<br /><br /><span>x</span>"}, "Honors Algebra 2"),
    ('{{#String.IsString "Hello"}}yes{{else}}no{{/String.IsString}}', None, "yes"),
    ("{{#String.IsString 1}}yes{{else}}no{{/String.IsString}}", None, "no"),
    ("{{String.Join numbers}}", {"numbers": [1, 2, 3, 4]}, "1234"),
    ('{{String.Join numbers ", "}}', {"numbers": [1, 2, 3, 4]}, "1, 2, 3, 4"),
    ("{{[String.Split] \"a,b,c\" ','}}", None, "a,b,c"),
    ('{{[String.Split] "a_;b_;c" "_;"}}', None, "a,b,c"),
    ("{{#each (String.Split \"a;b;c\" ';')}}{{@key}}:{{@index}}:{{this}} {{/each}}", None, "0:0:a 1:1:b 2:2:c "),
    ('{{#String.StartsWith "Hello" "He"}}Hi{{else}}Goodbye{{/String.StartsWith}}', None, "Hi"),
    ('{{#String.StartsWith "Hello" "xx"}}Hi{{else}}Goodbye{{/String.StartsWith}}', None, "Goodbye"),
    ("{{#String.StartsWith \"Hello\" 'H'}}Hi{{else}}Goodbye{{/String.StartsWith}}", None, "Hi"),
    ('{{[String.SubString] "foobar" 3}}', None, "bar"),
    ('{{[String.SubString] "foobar" 0 3}}', None, "foo"),
    ('{{[String.Substring] "foobar" 3 3}}', None, "bar"),
    ("{{[String.Titlecase] [FirstName]}}", {"FirstName": "jill"}, "Jill"),
    ('{{String.Titlecase "the QUICK brown-fox"}}', None, "The QUICK Brown Fox"),
    ('{{[String.Lowercase] "FOO"}}|{{[String.Lowercase] "42"}}', None, "foo|42"),
    ('{{String.Uppercase "foo bar"}}|{{String.ToUpper "x"}}|{{String.ToLower "Y"}}', None, "FOO BAR|X|y"),
    ('{{String.Truncate "This is a long sentence that needs truncating." 10}}', None, "This is a "),
    # String (StringHelpersTests)
    ('{{{String.Base64Encode "Hello, World!"}}}|{{String.Base64Decode "VGVzdA=="}}', None, "SGVsbG8sIFdvcmxkIQ==|Test"),
    ('{{String.Camelcase "FOO Bar"}}|{{String.Camelcase "foo bar"}}|{{String.Camelcase "A"}}', None, "fooBar|fooBar|A"),
    ('{{String.Pascalcase "foo bar"}}|{{String.Pascalcase "FOO Bar"}}|{{String.Pascalcase "a"}}', None, "FooBar|FOOBar|A"),
    ('{{String.Capitalize "foo"}}|{{String.Concat "a" "b"}}', None, "Foo|ab"),
    ('{{String.Contains "foobar" "foo"}}|{{String.Contains "foo" ""}}|{{String.Contains "" "bar"}}', None, "True|True|False"),
    ('{{String.Ellipsis "foobar" 0}}|{{String.Ellipsis "foobar" 1}}|{{String.Ellipsis "foobar" 8}}', None, "...|f...|foobar"),
    ('{{{String.HtmlDecode "1 &lt; 2 &gt; 0 &#65; &quot;q&quot; &amp;"}}}', None, '1 < 2 > 0 A "q" &'),
    ('{{{String.HtmlEncode "1 < 2 & \'x\' \u00e9"}}}', None, "1 &lt; 2 &amp; &#39;x&#39; &#233;"),
    ('{{String.IsNullOrEmpty ""}}|{{String.IsNullOrWhiteSpace " "}}|{{String.IsNotNullOrEmpty "a"}}|{{String.IsNotNullOrWhiteSpace " "}}', None, "True|True|True|False"),
    ("{{String.IsNullOrEmpty missing}}", None, "True"),
    ('{{String.PadLeft "foo" 10 "0"}}|{{String.PadLeft "foo" 10 "padding"}}|{{String.PadRight "foo" 6 ""}}|', None, "0000000foo|pppppppfoo|foo   |"),
    ('{{String.PadLeft "foobarbaz" 6 "0"}}', None, "foobarbaz"),
    ('{{String.Prepend "foo" "bar"}}|{{String.Prepend "" "bar"}}|{{String.Remove "foo" "o"}}', None, "barfoo||f"),
    ('{{String.Repeat "foo" 2}}|{{String.Repeat "a" 0}}|{{String.Reverse "Bar"}}|{{String.Replace "Bar" "a" "?"}}', None, "foofoo||raB|B?r"),
    ('[{{String.Trim " foo bar "}}|{{String.TrimEnd "foo bar "}}|{{String.TrimStart " foo bar "}}]', None, "[foo bar|foo bar|foo bar ]"),
    # Math (MathHelpersTemplateTests, MathHelpersTests)
    ("{{[Math.Add] 1 2}}|{{[Math.Add] 2.2 3.1}}", None, "3|5.300000000000001"),
    ('{{Math.Add "1000" "1.2"}}|{{Math.Add -1.2 1.2}}|{{Math.Plus 1 2}}', None, "1001.2|0|3"),
    ("{{[Math.Add] viewData.page 42}}", {"abc": "xyz"}, "42"),
    ("{{[Math.LessThan] 2 1}}|{{[Math.LessThan] 1 2}}|{{[Math.LessThan] 2.2 3.1}}", None, "False|True|True"),
    ("{{Math.Subtract 100 1}}|{{Math.Subtract 101.1 1}}|{{Math.Subtract 101 0.9}}|{{Math.Minus 1 2}}", None, "99|100.1|100.1|-1"),
    ('{{Math.Abs -1}}|{{Math.Abs -2147483649}}|{{Math.Abs "-1.2"}}', None, "1|2147483649|1.2"),
    ('{{Math.Divide 1.2 0.5}}|{{Math.Divide "45" "22.5"}}|{{Math.Divide 1 0}}|{{Math.Divide -1 0}}', None, "2.4|2|Infinity|-Infinity"),
    ('{{Math.GreaterThan 2147483649 0}}|{{Math.GreaterThan "1.2" 0}}|{{Math.GreaterThanEqual 1 1}}|{{Math.LessThanEqual 2 1}}', None, "True|True|True|False"),
    ('{{Math.Avg -1.1 1.1}}|{{Math.Avg "20" "30.0"}}', None, "0|25"),
    ("{{Math.Max -1.2 1}}|{{Math.Min 1 -1.2}}|{{Math.Max 3 4}}", None, "1|-1.2|4"),
    ('{{Math.Multiply -1.2 2}}|{{Math.Multiply "2" "22.5"}}|{{Math.Times 3 4}}', None, "-2.4|45|12"),
    ("{{Math.Sign 0}}|{{Math.Sign -2.2}}|{{Math.Sign 42.5}}", None, "0|-1|1"),
    ("{{Math.Modulo 7 3}}|{{Math.Modulo -7 3}}|{{Math.Modulo 5.5 2}}", None, "1|-1|1.5"),
    ("{{Math.Power 2 10}}|{{Math.Sqrt 16}}|{{Math.Sqrt -1}}", None, "1024|4|NaN"),
    ("{{Math.Round 2.5}}|{{Math.Round 3.5}}|{{Math.Ceiling 1.1}}|{{Math.Floor 2.5 2}}", None, "2|4|2|5"),
    ("{{Math.Equal 1 1}}|{{Math.Equal 0.1 0.2}}|{{Math.NotEqual 1 2}}", None, "True|False|True"),
    ("{{Math.Add 9223372036854775807 1}}", None, "-9223372036854775808"),
    ("{{Math.Multiply a a}}|{{Math.Divide 1 b}}", {"a": 1e10, "b": 100000}, "1E+20|1E-05"),
    ("{{Math.Add a b}}", {"a": 1, "b": 0.5}, "1.5"),
    ('{{#if (Math.GreaterThan score 50)}}pass{{else}}fail{{/if}}', {"score": 99.0}, "pass"),
    # Boolean (BooleanHelpersTemplateTests, BooleanHelpersTests)
    ('[ {{#each data}}{{#if (Boolean.Not @first)}}, "{{this}}"{{else}}"{{this}}"{{/if}}{{/each}} ]', {"data": ["text1", "text2", "text3"]}, '[ "text1", "text2", "text3" ]'),
    ("{{[Boolean.Not] value}}", {"value": True}, "False"),
    ("{{[Boolean.Not] value}}", {"value": False}, "True"),
    ("{{Boolean.And true false}}|{{Boolean.Or true false}}|{{Boolean.LogicalXor true true}}|{{Boolean.Equal false false}}", None, "False|True|False|True"),
    ("{{Boolean.LogicalAnd true true}}|{{Boolean.LogicalOr false false}}|{{Boolean.NotEqual true false}}", None, "True|False|True"),
    ('{{Boolean.Not "true"}}|{{Boolean.Not missing}}', None, "False|True"),
    # Constants
    ("{{[Constants.Math.PI]}}|{{Constants.Math.E}}", None, "3.141592653589793|2.718281828459045"),
    # Enumerable (EnumerableHelpersTemplateTests, EnumerableHelpersTests)
    ("{{[Enumerable.Count] values}}", {"values": None}, "0"),
    ("{{[Enumerable.Count] values}}", {"values": []}, "0"),
    ("{{[Enumerable.Count] values}}", {"values": ["a", "b", "c"]}, "3"),
    ("{{Enumerable.Average xs}}|{{Enumerable.Sum xs}}|{{Enumerable.Max xs}}|{{Enumerable.Min xs}}", {"xs": [1, "2", 3.5]}, "2.1666666666666665|6.5|3.5|1"),
    ("{{Enumerable.Distinct xs}}|{{Enumerable.Reverse xs}}", {"xs": [1, 2, 1, "1"]}, "1,2,1|1,1,2,1"),
    ("{{Enumerable.Skip xs 1}}|{{Enumerable.Take xs 2}}|{{Enumerable.Page xs 1 2}}", {"xs": [1, 2, 3, 4, 5]}, "2,3,4,5|1,2|3,4"),
    ("{{Enumerable.IsEmpty xs}}|{{Enumerable.IsEmpty ys}}|{{Enumerable.IsFirst xs 1}}|{{Enumerable.IsLast xs 1}}", {"xs": [1, 2], "ys": []}, "False|True|True|False"),
    ('{{Enumerable.Select people "name"}}|{{String.Join (Enumerable.Select people "age" true) "+"}}', {"people": [{"name": "a", "age": 3}, {"name": "b"}]}, "a,b|3"),
    ("{{#each (Enumerable.Take xs 2)}}[{{this}}]{{/each}}", {"xs": ["x", "y", "z"]}, "[x][y]"),
    # Regex (RegexHelpersTemplateTests)
    ('{{#Regex.IsMatch "Hello" "Hello"}}yes{{else}}no{{/Regex.IsMatch}}', None, "yes"),
    ('{{#Regex.IsMatch "Hello" "x"}}yes{{else}}no{{/Regex.IsMatch}}', None, "no"),
    ('{{#if (Regex.IsMatch "Hello" "Hello")}}this is true{{/if}}', None, "this is true"),
    ('{{#if (Regex.IsMatch "Hello" "x")}}this is true{{/if}}', None, ""),
    ("{{#Regex.IsMatch thing 'foo' 'i'}}Yes{{/Regex.IsMatch}}", {"thing": "Foo"}, "Yes"),
    ("{{#Regex.IsMatch thing 'foo'}}Yes{{/Regex.IsMatch}}", {"thing": "Foo"}, ""),
    ("{{#Regex.IsMatch thing 'bar' 'i'}}Yes{{/Regex.IsMatch}}", {"thing": "Foo"}, ""),
    (r'{{Regex.IsMatch code "^\d{3}-\d{4}$"}}', {"code": "555-1234"}, "True"),
    (r'{{Regex.Match "order 42 shipped" "\d+"}}', None, "42"),
    (r'{{#Regex.Match "2020-04-15" "(?<year>\d{4})-(\d{2})"}}{{year}}/{{[1]}}/{{[0]}}{{/Regex.Match}}', None, "2020/04/2020-04"),
    ('{{Regex.IsMatch "A\nb" "^b" "m"}}|{{Regex.IsMatch "a\nb" "a.b" "s"}}|{{Regex.IsMatch "a\nb" "a.b"}}', None, "True|True|False"),
    # Url (UrlHelpersTests)
    ('{{Url.EncodeUri "a b&c=d/é"}}|{{Url.DecodeUri "a+b%26c%3Dd%2F%C3%A9"}}', None, "a+b%26c%3Dd%2F%C3%A9|a b&amp;c&#x3D;d/é"),
    ('{{{Url.DecodeUri "%zz%41"}}}', None, "%zzA"),
    # DateTime (DateTimeHelpersTemplateTests; the clock pinned at 2020-04-15 23:59:58 UTC)
    ("{{DateTime.Now}}", None, "2020-04-15T23:59:58.0000000+00:00"),
    ("{{DateTime.UtcNow}}", None, "2020-04-15T23:59:58.0000000Z"),
    ('{{DateTime.Now "yyyy-MM-dd"}}|{{DateTime.UtcNow "HH:mm"}}', None, "2020-04-15|23:59"),
    ('{{DateTime.Format x "yyyy-MMM-dd"}}', {"x": "2020-04-15T11:12:13"}, "2020-Apr-15"),
    ('{{DateTime.Format x "yyyy-MMM-dd"}}', {"x": 42}, ""),
    ('{{DateTime.Format (DateTime.Now) "D"}}', None, "Wednesday, 15 April 2020"),
    ('{{DateTime.AddYears "2000-01-01" 1}}|{{DateTime.AddMonths "2000-01-31" 1}}|{{DateTime.AddDays "2000-01-01" 1}}', None, "2001-01-01T00:00:00.0000000|2000-02-29T00:00:00.0000000|2000-01-02T00:00:00.0000000"),
    ('{{DateTime.AddHours "2000-01-01 00:00:00" 1}}|{{DateTime.AddMinutes "2000-01-01 00:00:00" 1}}|{{DateTime.AddSeconds "2000-01-01 00:00:00" 1}}', None, "2000-01-01T01:00:00.0000000|2000-01-01T00:01:00.0000000|2000-01-01T00:00:01.0000000"),
    ('{{DateTime.AddMilliseconds "2000-01-01" 5}}|{{DateTime.AddTicks "2000-01-01" 5}}', None, "2000-01-01T00:00:00.0050000|2000-01-01T00:00:00.0000005"),
    ('{{DateTime.AddYears "01/01/2000" 1 "dd/MM/yyyy"}}', None, "2001-01-01T00:00:00.0000000"),
    ('{{DateTime.AddHours "01/01/2000 00:00:00" 1 "dd/MM/yyyy hh:mm:ss"}}', None, "2000-01-01T01:00:00.0000000"),
    ('{{DateTime.Add "2000-01-01" 1 "years"}}|{{DateTime.Add "2000-01-01 00:00:00" 1 "minutes"}}', None, "2001-01-01T00:00:00.0000000|2000-01-01T00:01:00.0000000"),
    ('{{DateTime.Add "01/01/2000" 1 "days" "dd/MM/yyyy"}}', None, "2000-01-02T00:00:00.0000000"),
    ("{{DateTime.Parse x}}", {"x": "2000-01-01 4PM"}, "2000-01-01T16:00:00.0000000"),
    ('{{DateTime.ParseExact x "yyyy MM dd"}}', {"x": "2000 01 01"}, "2000-01-01T00:00:00.0000000"),
    ('{{DateTime.Format (DateTime.AddDays event.date 30) "yyyy-MM-dd"}}', {"event": {"date": "2024-12-15T10:00:00Z"}}, "2025-01-14"),
]


@pytest.mark.parametrize(("template", "context", "expected"), CASES)
def test_library_examples(template: str, context: Any, expected: str) -> None:
    assert render(template, context) == expected


@pytest.mark.parametrize("template", ["{{String.Append 'a' 'b'}}", "{{[string.append] 'a' 'b'}}", "{{STRING.APPEND 'a' 'b'}}"])
def test_helper_names_ignore_case_as_in_handlebars_net(template: str) -> None:
    assert render(template) == "ab"


# Each template kind below renders by another program (flat, native candidate, closures):
# all resolve the name the same way and print the result the .NET way.
SHADOWING = {"xs": [1, 2], "x": True, "constants": {"math": {"pi": "a lookup"}}, "math": {"equal": "a lookup"}}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{constants.math.pi}}", "3.141592653589793"),
        ("{{{[CONSTANTS.MATH.PI]}}}", "3.141592653589793"),
        ("{{#each xs}}{{constants.math.pi}};{{/each}}", "3.141592653589793;3.141592653589793;"),
        ("{{#if x}}{{[Constants.Math.E]}}{{/if}}", "2.718281828459045"),
        ("{{#each xs}}{{math.equal this 1}}{{#if @last}}.{{/if}}{{/each}}", "TrueFalse."),
        ("{{#with xs}}{{Math.Divide 1 4}} {{Math.Multiply 1.5 1000000000000000}}{{/with}}", "0.25 1.5E+15"),
    ],
)
def test_every_program_kind_calls_helpers_by_the_same_name(template: str, expected: str) -> None:
    compiled = compile_template(template)
    assert compiled._flat is None  # a helper call: no flat program (it would read a path)
    assert compiled._native is not None  # the native program calls the helper, as the closures do
    assert render(template, SHADOWING) == expected
    assert compiled._render_general(SHADOWING, None, None, None, escape_html, 1 << 20, 1.0) == expected


def test_a_dotted_path_that_is_no_helper_is_still_a_lookup() -> None:
    assert render("{{course.code}}|{{String.x}}", {"course": {"code": "C1"}, "String": {"x": "y"}}) == "C1|y"


def test_block_body_sees_the_result_as_its_context() -> None:
    # Handlebars.Net renders the body with the helper's value: ../ reaches the outer context.
    out = render('{{#String.Append "a" "b"}}{{this}} of {{../name}}{{/String.Append}}', {"name": "n"})
    assert out == "ab of n"


def test_results_are_escaped_like_any_value_in_json_rows() -> None:
    out = render('{"v": "{{String.Append a "\\"}"}}"}', {"a": 'x"'}, escape="json")
    assert out == '{"v": "x\\"\\"}"}'


def test_every_category_is_there() -> None:
    counts = count_by_category()
    assert all(counts[c] > 0 for c in ("String", "Math", "DateTime", "Boolean", "Enumerable", "Regex", "Url", "Constants"))
    assert sum(counts.values()) >= 110


@pytest.mark.parametrize(
    ("template", "context", "message"),
    [
        ('{{[String.Append] "foo"}}', None, "helper 'String.Append' takes exactly 2 arguments, got 1"),
        ('{{[String.Append] "foo" "bar" "bar2"}}', None, "takes exactly 2 arguments, got 3"),
        ('{{String.Substring "foo" 1 2 3}}', None, "takes 2 to 3 arguments, got 4"),
        ("{{Math.Subtract 100 ''}}", None, "helper 'Math.Subtract': argument 2 (value2): '' cannot be converted"),
        ('{{Math.Add "abc" 1}}', None, "argument 1 (value1): 'abc' cannot be converted"),
        ("{{Math.Add true 1}}", None, "argument 1 (value1): True cannot be converted"),
        ("{{Math.Modulo 1 0}}", None, "argument 2 (value2): division by zero"),
        ('{{String.Repeat "x" "many"}}', None, "argument 2 (count): expected a whole number"),
        ('{{String.Repeat "x" 1.5}}', None, "argument 2 (count): expected a whole number, got 1.5"),
        ('{{String.Repeat "x" 3000000000}}', None, "argument 2 (count): 3000000000 is outside the 32-bit range"),
        ("{{String.Uppercase xs}}", {"xs": [1]}, "argument 1 (value): expected text, got an array"),
        ('{{Boolean.Not "maybe"}}', None, "argument 1 (value): expected true or false"),
        ('{{Enumerable.Sum "abc"}}', None, "argument 1 (values): expected an array, got text"),
        ("{{Enumerable.Average xs}}", {"xs": []}, "argument 1 (values): the sequence contains no elements"),
        ('{{String.Substring "foo" 5}}', None, "argument 2 (start): 5 is outside the text"),
        ('{{String.Contains missing "x"}}', None, "argument 1 (value): must not be null"),
        ('{{DateTime.Parse "not a date"}}', None, "helper 'DateTime.Parse': 'not a date' is not a date"),
        ('{{DateTime.ParseExact "2000-01-01" "yyyy MM dd"}}', None, "does not have the format"),
        ('{{DateTime.Add "2000-01-01" 1 "weeks"}}', None, "argument 3 (datePart): must be one of years"),
        ('{{DateTime.AddYears "9999-01-01" 1}}', None, "outside the range 0001-01-01 to 9999-12-31"),
        ('{{DateTime.Format (DateTime.Now) "Q"}}', None, "'Q' is not a standard date format"),
        ('{{String.Format 1 "F101"}}', None, "precision 101 in format 'F101' is larger than 100"),
        ('{{String.Append "a" "b" x=1}}', None, "takes no hash arguments"),
        ('{{String.Base64Decode "***"}}', None, "argument 1 (value): is not valid Base64"),
    ],
)
def test_errors_name_the_helper_and_the_argument(template: str, context: Any, message: str) -> None:
    with pytest.raises(TemplateRenderError) as info:
        render(template, context)
    assert message in str(info.value)


# DateTimeHelpersTests.Add / Add_With_DatePart: "2000-01-01 00:00:00" plus an increment, by .NET ticks.
ADD_TICKS = {
    ("years", -1): 630507456000000000, ("years", 1): 631139040000000000,
    ("months", -1): 630796032000000000, ("months", 1): 630849600000000000,
    ("days", -1): 630821952000000000, ("days", 1): 630823680000000000,
    ("hours", -1): 630822780000000000, ("hours", 1): 630822852000000000,
    ("minutes", -1): 630822815400000000, ("minutes", 1): 630822816600000000,
    ("seconds", -1): 630822815990000000, ("seconds", 1): 630822816010000000,
    ("milliseconds", -1): 630822815999990000, ("milliseconds", 1): 630822816000010000,
    ("ticks", -1): 630822815999999999, ("ticks", 1): 630822816000000001,
}  # fmt: skip
START_TICKS = 630822816000000000


@pytest.mark.parametrize(("part", "increment"), [*ADD_TICKS, ("days", 0)])
def test_date_additions_land_on_the_librarys_ticks(part: str, increment: int) -> None:
    expected = ADD_TICKS.get((part, increment), START_TICKS)
    by_part = compile_template(f'{{{{DateTime.Add "2000-01-01 00:00:00" {increment} "{part}"}}}}').render({})
    by_name = compile_template(f'{{{{DateTime.Add{part.capitalize()} "2000-01-01 00:00:00" {increment}}}}}').render({})
    assert by_part == by_name == NetDateTime(expected)
    formatted = f'{{{{DateTime.Add{part.capitalize()} "01/01/2000 00:00:00" {increment} "dd/MM/yyyy HH:mm:ss"}}}}'
    assert compile_template(formatted).render({}) == NetDateTime(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{DateTime.Parse "1:15:30 2000-02-01"}}', "2000-02-01T01:15:30.0000000"),
        ('{{DateTime.Parse "2000-02-01 1:15:30"}}', "2000-02-01T01:15:30.0000000"),
        ('{{DateTime.Parse "2000-02-01"}}', "2000-02-01T00:00:00.0000000"),
        ('{{DateTime.ParseExact "2000 02 01" "yyyy MM dd"}}', "2000-02-01T00:00:00.0000000"),
        ('{{DateTime.ParseExact "01||02||2000 1-15-30" "dd||MM||yyyy h-mm-ss"}}', "2000-02-01T01:15:30.0000000"),
        ('{{DateTime.Format "2020-04-15T23:59:58.0000000" "t"}}', "23:59"),
        ('{{DateTime.Format "2020-04-15T23:59:58.0000000" "MM-dd-yyyy"}}', "04-15-2020"),
        ('{{DateTime.Now "o"}}|{{DateTime.Now "d"}}', "2020-04-15T23:59:58.0000000+00:00|04/15/2020"),
    ],
)
def test_date_parsing_and_formatting_from_the_librarys_unit_tests(template: str, expected: str) -> None:
    assert render(template) == expected


ARRAY = [{"B": {"Num": 1, "Field": "f"}}, {"B": {"Num": None}}, {}]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{json (Enumerable.Select xs "B.Num")}}', "[1,null,null]"),
        ('{{json (Enumerable.Select xs "B.Num" true)}}', "[1]"),
        ('{{json (Enumerable.Select xs "B.Field")}}', '["f",null,null]'),
        ("{{Enumerable.Sum (Enumerable.Select ys \"n\")}}", "60"),
        ("{{Enumerable.Sum zs}}|{{Enumerable.Min zs}}|{{Enumerable.Max zs}}|{{Enumerable.Average zs}}", "60|10|30|20"),
        ("{{Enumerable.Count missing}}|{{Enumerable.IsEmpty missing}}", "0|True"),
    ],
)
def test_enumerable_cases_from_the_librarys_unit_tests(template: str, expected: str) -> None:
    context = {"xs": ARRAY, "ys": [{"n": 10}, {"n": 20}, {"n": 30}], "zs": [10.0, 20.0, 30.0]}
    assert render(template, context) == expected


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("arinet/HandlebarDocs/blob/master/customHelpers/url.md#decodeuri", "arinet%2FHandlebarDocs%2Fblob%2Fmaster%2FcustomHelpers%2Furl.md%23decodeuri"),
        ("/search/inventory/brand/Polaris Industries/sort/best-match", "%2Fsearch%2Finventory%2Fbrand%2FPolaris+Industries%2Fsort%2Fbest-match"),
        ("", ""),
    ],
)
def test_url_cases_from_the_librarys_unit_tests(value: str, encoded: str) -> None:
    assert render("{{{Url.EncodeUri v}}}", {"v": value}) == encoded
    assert render("{{{Url.DecodeUri v}}}", {"v": encoded}) == value


@pytest.mark.parametrize(("a", "b"), [(True, True), (True, False), (False, True), (False, False)])
def test_boolean_truth_tables(a: bool, b: bool) -> None:
    names = ["Equal", "NotEqual", "And", "LogicalAnd", "Or", "LogicalOr", "LogicalXor"]
    expected = [a == b, a != b, a and b, a and b, a or b, a or b, a != b]
    template = "|".join(f"{{{{Boolean.{n} a b}}}}" for n in names)
    assert render(template, {"a": a, "b": b}) == "|".join(str(e) for e in expected)
