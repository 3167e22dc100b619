"""Template engine speed: renders/s per template beside pybars3 and a hand-written function, and the full row path.

    .venv/bin/pip install pybars3==0.9.7   # the "bench" extra; never a runtime dependency
    .venv/bin/python benchmarks/bench_templates.py [--events 20000] [--rounds 3]

One core, already-decoded events. For each template of a realistic set (flat
fields; #each with @index/@last and json; #if/else if/else chains; #with and
../; subexpressions and hash arguments; a category map with three entries) it
prints renders/s of our engine, of pybars3 and of a hand-written Python
function that prints the same text (checked on every event before timing),
and the ratios. Ours renders a single template by ``Template.render``, the
category map by ``payload.route`` and ``RouteEntry.render``, what
``render_row`` does before it checks the row. Then rows/s of the full row path (route + render + check +
compact) beside a hand-written one, as before. Every round measures all of
them in turn over the same events, so load from other work on the machine
falls on all alike, and starts each case with another of the three (the one
that runs right after the previous case's last run is slowed: with ours
always first, ours ran after pybars3 every time); the summary takes each
one's best round. Asserts nothing.

pybars3 has no ``else if`` (it gets the same chains nested) nor
``includeZero`` (left out for it), and gets ``../``
inside ``#with`` wrong: its figures are for the same amount of work, its
output is not checked.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub_stream.templating import compile_template, parse_payload_template
from hub_stream.templating.values import escape_json, json_literal

FIELDS = [f"f{i}" for i in range(16)]
FLAT = (
    "{\n"
    + "".join(f'  "{name}": "{{{{{name}}}}}",\n' for name in FIELDS)
    + '  "email": "{{person.email}}",\n'
    + '  "participant": "{{@event.PublisherParticipantId}}",\n'
    + '  "score": {{json score}},\n'
    + '  "passed": {{json passed}}\n'
    + "}"
)
EACH = (
    '{"Email": "{{person.email}}", "Items": [{{#each items}}'
    '{"Index": {{@index}}, "Id": {{json id}}, "Name": "{{name}}", "Score": {{json score}}}'
    "{{#unless @last}},{{/unless}}{{/each}}]}"
)
CHAIN = (
    '{"Email": "{{person.email}}", "Result": '
    '{{#if passed}}"PASS"{{else if failed}}"FAIL"{{else if incomplete}}"INCOMPLETE"{{else}}"OTHER"{{/if}}, '
    '"Score": {{#if score}}{{json score}}{{else}}0{{/if}}, "Level": "{{#if vip}}gold{{else if member}}silver{{else}}none{{/if}}"}'
)
# pybars3 has no `else if`: the same chains, nested
CHAIN_NESTED = (
    '{"Email": "{{person.email}}", "Result": '
    '{{#if passed}}"PASS"{{else}}{{#if failed}}"FAIL"{{else}}{{#if incomplete}}"INCOMPLETE"{{else}}"OTHER"{{/if}}{{/if}}{{/if}}, '
    '"Score": {{#if score}}{{json score}}{{else}}0{{/if}}, "Level": "{{#if vip}}gold{{else}}{{#if member}}silver{{else}}none{{/if}}{{/if}}"}'
)
WITH = (
    '{{#with course}}{"Code": "{{code}}", "Title": "{{title}}", "Hours": {{json hours}}, '
    '"Email": "{{../person.email}}", "Name": "{{../person.name}}", "Provider": "{{@root.provider}}"}{{/with}}'
)
SUBEXPR = (
    '{"Code": {{json (lookup course "code")}}, "Email": "{{lookup person "email"}}", '
    '"Hours": {{#if (lookup course "hours") includeZero=true}}{{json course.hours}}{{else}}null{{/if}}, '
    '"First": {{json (lookup items 0)}}}'
)
CATEGORY_ROWS = {
    "COURSE": '{"Kind": "course", "Email": "{{person.email}}", "Code": "{{course.code}}", "Hours": {{json course.hours}}}',
    "EXAM": '{"Kind": "exam", "Email": "{{person.email}}", "Score": {{json score}}, "Passed": {{json passed}}}',
    "WEBINAR": '{"Kind": "webinar", "Email": "{{person.email}}", "Title": "{{course.title}}", "Provider": "{{provider}}"}',
}
CATEGORIES = list(CATEGORY_ROWS)
CATEGORY_MAP = {key: {"importProcessId": i + 1, "batchRowTemplate": row} for i, (key, row) in enumerate(CATEGORY_ROWS.items())}


def make_events(n: int) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        data: dict[str, Any] = {name: f"value {name} {i}" for name in FIELDS}
        data.update(
            person={"email": f"p{i}@example.org", "name": f'Pat "{i}"'},
            score=float(i % 100),
            passed=i % 3 == 0,
            failed=i % 3 == 1,
            incomplete=i % 5 == 2,
            vip=i % 7 == 0,
            member=i % 2 == 0,
            provider="ACME Learning",
            course={"code": f"C-{i % 40}", "title": f"Course {i % 40}\tpart", "hours": (i % 8) * 0.5},
            items=[{"id": i * 10 + k, "name": f"item {k}", "score": k * 1.5} for k in range(i % 4 + 2)],
        )
        events.append(
            {
                "EventId": f"E:ACME-{i}",
                "PublisherParticipantId": f"P{i}",
                "PublisherEventCategory": {"value": CATEGORIES[i % 3], "label": CATEGORIES[i % 3].title()},
                "PublisherEventData": data,
            }
        )
    return events


# --- hand-written functions: what each template prints, written as a Python programmer would ----


def hand_flat(e: dict[str, Any]) -> str:
    d = e["PublisherEventData"]
    fields = "".join(f'  "{name}": "{escape_json(d[name])}",\n' for name in FIELDS)
    return (
        "{\n" + fields + f'  "email": "{escape_json(d["person"]["email"])}",\n'
        f'  "participant": "{escape_json(e["PublisherParticipantId"])}",\n'
        f'  "score": {json_literal(d["score"])},\n  "passed": {json_literal(d["passed"])}\n}}'
    )


def hand_each(e: dict[str, Any]) -> str:
    d = e["PublisherEventData"]
    items = ",".join(
        f'{{"Index": {i}, "Id": {json_literal(item["id"])}, "Name": "{escape_json(item["name"])}", "Score": {json_literal(item["score"])}}}'
        for i, item in enumerate(d["items"])
    )
    return f'{{"Email": "{escape_json(d["person"]["email"])}", "Items": [{items}]}}'


def hand_chain(e: dict[str, Any]) -> str:
    d = e["PublisherEventData"]
    if d["passed"]:
        result = '"PASS"'
    elif d["failed"]:
        result = '"FAIL"'
    elif d["incomplete"]:
        result = '"INCOMPLETE"'
    else:
        result = '"OTHER"'
    score = json_literal(d["score"]) if d["score"] else "0"
    level = "gold" if d["vip"] else "silver" if d["member"] else "none"
    return f'{{"Email": "{escape_json(d["person"]["email"])}", "Result": {result}, "Score": {score}, "Level": "{level}"}}'


def hand_with(e: dict[str, Any]) -> str:
    d = e["PublisherEventData"]
    c = d["course"]
    return (
        f'{{"Code": "{escape_json(c["code"])}", "Title": "{escape_json(c["title"])}", "Hours": {json_literal(c["hours"])}, '
        f'"Email": "{escape_json(d["person"]["email"])}", "Name": "{escape_json(d["person"]["name"])}", '
        f'"Provider": "{escape_json(d["provider"])}"}}'
    )


def hand_subexpr(e: dict[str, Any]) -> str:
    d = e["PublisherEventData"]
    hours = d["course"].get("hours")
    shown = json_literal(hours) if hours is not None else "null"
    return (
        f'{{"Code": {json_literal(d["course"].get("code"))}, "Email": "{escape_json(d["person"].get("email", ""))}", '
        f'"Hours": {shown}, "First": {json_literal(d["items"][0])}}}'
    )


def hand_category(e: dict[str, Any]) -> str:
    d = e["PublisherEventData"]
    email = escape_json(d["person"]["email"])
    category = e["PublisherEventCategory"]["value"]
    if category == "COURSE":
        return f'{{"Kind": "course", "Email": "{email}", "Code": "{escape_json(d["course"]["code"])}", "Hours": {json_literal(d["course"]["hours"])}}}'
    if category == "EXAM":
        return f'{{"Kind": "exam", "Email": "{email}", "Score": {json_literal(d["score"])}, "Passed": {json_literal(d["passed"])}}}'
    return f'{{"Kind": "webinar", "Email": "{email}", "Title": "{escape_json(d["course"]["title"])}", "Provider": "{escape_json(d["provider"])}"}}'


@dataclass
class Case:
    name: str
    ours: Callable[[dict[str, Any]], str]
    pybars: Callable[[dict[str, Any]], object] | None
    hand: Callable[[dict[str, Any]], str]


def _ours(source: str) -> Callable[[dict[str, Any]], str]:
    template = compile_template(source)
    return lambda e: template.render(e["PublisherEventData"], data={"event": e}, escape="json")


def _ours_category() -> Callable[[dict[str, Any]], str]:
    payload = parse_payload_template(CATEGORY_MAP)

    def render(e: dict[str, Any]) -> str:  # what render_row does before it checks and compacts the row
        entry = payload.route(e)
        assert entry is not None and entry.render is not None
        return entry.render(e)

    return render


def _pybars(source: str | dict[str, str]) -> Callable[[dict[str, Any]], object] | None:
    try:
        import pybars  # type: ignore[import-not-found]
    except ImportError:
        return None
    helpers = {"json": lambda this, value: pybars.strlist([json.dumps(value)])}
    compiler = pybars.Compiler()
    if isinstance(source, dict):
        by_category = {key: compiler.compile(row) for key, row in source.items()}
        return lambda e: by_category[e["PublisherEventCategory"]["value"]](e["PublisherEventData"], helpers=helpers)
    compiled = compiler.compile(source.replace("{{@event.PublisherParticipantId}}", "{{f0}}"))
    return lambda e: compiled(e["PublisherEventData"], helpers=helpers)


def cases() -> list[Case]:
    return [
        Case("flat: 20 fields", _ours(FLAT), _pybars(FLAT), hand_flat),
        Case("#each with @index/@last, json", _ours(EACH), _pybars(EACH), hand_each),
        Case("#if / else if / else chains", _ours(CHAIN), _pybars(CHAIN_NESTED), hand_chain),
        Case("#with and ../", _ours(WITH), _pybars(WITH), hand_with),
        Case("subexpressions, hash arguments", _ours(SUBEXPR), _pybars(SUBEXPR.replace(" includeZero=true", "")), hand_subexpr),
        Case("category map, three entries", _ours_category(), _pybars(CATEGORY_ROWS), hand_category),
    ]


def per_second(events: list[dict[str, Any]], fn: Callable[[dict[str, Any]], object]) -> float:
    """Renders per CPU second of this process (other work on a shared machine does not count)."""
    started = time.process_time()
    for e in events:
        fn(e)
    return len(events) / max(time.process_time() - started, 1e-9)


def hand_written_row(event: dict[str, Any]) -> str:
    """What the full row path does for the flat template, written by hand: the baseline."""
    d = event["PublisherEventData"]
    row = {name: d[name] for name in FIELDS}
    row.update(email=d["person"]["email"], participant=event["PublisherParticipantId"], score=d["score"], passed=d["passed"])
    text = json.dumps(row)
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    events = make_events(args.events)
    print(f"{len(events):,} events, one core, {args.rounds} round(s); renders/s, best round of each")
    table = cases()
    for case in table:
        for e in events:
            if case.ours(e) != case.hand(e):
                raise SystemExit(f"{case.name}: ours and hand-written differ:\n{case.ours(e)}\n{case.hand(e)}")
    best: dict[tuple[str, str], float] = {}
    for round_ in range(args.rounds):
        for case in table:
            runs = [("ours", case.ours), ("hand", case.hand), *([("pybars3", case.pybars)] if case.pybars else [])]
            # Each round starts with another of the three: whatever ran just before (the previous
            # case's last run, pybars3's in a fixed order) slows the first run, so no one is always first.
            shift = round_ % len(runs)
            for who, fn in runs[shift:] + runs[:shift]:
                best[case.name, who] = max(best.get((case.name, who), 0.0), per_second(events, fn))
    print(f"  {'template':<34} {'ours':>9} {'pybars3':>9} {'hand':>9}  {'ours/pybars3':>12} {'ours/hand':>9}")
    for case in table:
        ours, hand, py = best[case.name, "ours"], best[case.name, "hand"], best.get((case.name, "pybars3"))
        py_text = f"{py:>9,.0f}" if py else f"{'-':>9}"
        ratio = f"{ours / py:>11.1f}x" if py else f"{'-':>12}"
        print(f"  {case.name:<34} {ours:>9,.0f} {py_text} {hand:>9,.0f}  {ratio} {ours / hand:>9.2f}")
    print("  targets: ours/pybars3 >= 5x, ours/hand >= 0.5, every template")
    if table[0].pybars is None:
        print("  pybars3 not installed: pip install pybars3==0.9.7 to compare (the 'bench' extra)")

    payload = parse_payload_template({"COURSE": {"importProcessId": 1, "batchRowTemplate": FLAT}})
    row_best = {"full row path": 0.0, "hand-written row": 0.0}
    for _ in range(args.rounds):
        row_best["full row path"] = max(row_best["full row path"], per_second(events, payload.render_row))
        row_best["hand-written row"] = max(row_best["hand-written row"], per_second(events, hand_written_row))
    full, hand_row = row_best["full row path"], row_best["hand-written row"]
    print(f"  flat template, full row path (route+render+check+compact): {full:,.0f} rows/s;"
          f" hand-written: {hand_row:,.0f} rows/s; ratio {full / hand_row:.2f}")
    compile_times = {}
    for size in (25_000, 250_000):
        source = ('{{#if a}}"{{a.b}}": {{json c}}{{/if}}\n' * (size // 38 + 1))[:size]
        source = source[: source.rfind("{{#if")]
        started = time.process_time()
        compile_template(source)
        compile_times[size] = time.process_time() - started
    print(f"  compile (CPU): 25 KB {compile_times[25_000] * 1000:.0f} ms, 250 KB {compile_times[250_000] * 1000:.0f} ms"
          f" (x{compile_times[250_000] / compile_times[25_000]:.1f} for x10 the size)")


if __name__ == "__main__":
    main()
