"""docs/templates.md lists every Handlebars.Net.Helpers helper, and each example prints what the table says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub_stream.templating import compile_template
from hub_stream.templating.net_helpers.core import HELPERS
from hub_stream.templating.net_helpers.datetime_helpers import CLOCK

DOC = Path(__file__).resolve().parents[3] / "docs" / "templates.md"
EVENT_DATA = {
    "name": "ada lovelace",
    "s": "Hello",
    "xs": [3, 1, 2, 1],
    "people": [{"name": "a", "age": 3}, {"name": "b"}],
    "d": "2020-04-15T23:59:58",
    "n": 1234.5678,
    "flag": True,
}
ROW = re.compile(r"^\| `(?P<name>[\w.]+)` \| `(?P<example>.*)` \| `(?P<prints>.*)` \|$")


def rows() -> Iterator[tuple[str, str, str]]:
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m is not None:
            yield m["name"], m["example"].replace("\\|", "|"), m["prints"].replace("\\|", "|")


@pytest.fixture(autouse=True)
def pinned_clock() -> Any:
    CLOCK.insert(0, lambda: datetime(2020, 4, 15, 23, 59, 58, tzinfo=UTC))
    yield
    CLOCK.pop(0)


def test_every_helper_is_listed_once() -> None:
    listed = [name for name, _, _ in rows()]
    assert sorted(listed) == sorted(HELPERS)


@pytest.mark.parametrize(("name", "example", "prints"), list(rows()))
def test_each_example_prints_what_the_docs_say(name: str, example: str, prints: str) -> None:
    assert name in example
    assert compile_template(example).render(EVENT_DATA, escape="json") == prints
