"""Template engine speed: renders/s beside pybars3, and rows/s through the full row path.

    .venv/bin/pip install pybars3   # the "bench" extra; never a runtime dependency
    .venv/bin/python benchmarks/bench_templates.py [--events 100000] [--rounds 3]

One core, a 20-field JSON row template over already-decoded events. Prints
figures and ratios against baselines measured in the same run; asserts nothing.

Every round measures all four in turn over the same events (ours, pybars3, the
full row path, the hand-written baseline), so load from other work on the
machine falls on all of them alike; the summary takes each one's best round.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from hub_stream.templating import compile_template, parse_payload_template

FIELDS = [f"f{i}" for i in range(16)]
ROW_TEMPLATE = (
    "{\n"
    + "".join(f'  "{name}": "{{{{{name}}}}}",\n' for name in FIELDS)
    + '  "email": "{{person.email}}",\n'
    + '  "participant": "{{@event.PublisherParticipantId}}",\n'
    + '  "score": {{json score}},\n'
    + '  "passed": {{json passed}}\n'
    + "}"
)
PYBARS_TEMPLATE = ROW_TEMPLATE.replace("{{@event.PublisherParticipantId}}", "{{participant}}")
RENDER_TARGET = 5.0  # ours / pybars3
ROWS_TARGET = 30_000  # rows/s, where the hand-written baseline did about 33,000
ROWS_RATIO_TARGET = ROWS_TARGET / 33_000


def make_events(n: int) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        data: dict[str, Any] = {name: f"value {name} {i}" for name in FIELDS}
        data.update(person={"email": f"p{i}@example.org"}, score=float(i % 100), passed=i % 3 != 0, participant=f"P{i}")
        events.append(
            {
                "EventId": f"E:ACME-{i}",
                "PublisherParticipantId": f"P{i}",
                "PublisherEventCategory": {"value": "COURSE", "label": "Course"},
                "PublisherEventData": data,
            }
        )
    return events


def hand_written_row(event: dict[str, Any]) -> str:
    """What the full row path does for this template, written by hand: the baseline."""
    d = event["PublisherEventData"]
    row = {name: d[name] for name in FIELDS}
    row.update(email=d["person"]["email"], participant=event["PublisherParticipantId"], score=d["score"], passed=d["passed"])
    text = json.dumps(row)
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


def per_second(n: int, fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return n / (time.perf_counter() - started)


def pybars_renderer(events: list[dict[str, Any]]) -> Callable[[], object] | None:
    try:
        import pybars  # type: ignore[import-not-found]
    except ImportError:
        return None
    compiled = pybars.Compiler().compile(PYBARS_TEMPLATE)
    helpers = {"json": lambda this, v: pybars.strlist([json.dumps(v)])}
    return lambda: [compiled(e["PublisherEventData"], helpers=helpers) for e in events]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    events = make_events(args.events)
    n = len(events)
    print(f"{n:,} events, 20-field row template, one core, {args.rounds} round(s)")

    ours = compile_template(ROW_TEMPLATE)
    payload = parse_payload_template({"COURSE": {"importProcessId": 1, "batchRowTemplate": ROW_TEMPLATE}})
    runs: dict[str, Callable[[], object]] = {
        "(a) our engine: render": lambda: [ours.render(e["PublisherEventData"], data={"event": e}, escape="json") for e in events],
    }
    pybars = pybars_renderer(events)
    if pybars is not None:
        runs["(a) pybars3: render"] = pybars
    runs["(b) full row path: route+render+check+compact"] = lambda: [payload.render_row(e) for e in events]
    runs["(b) baseline: hand-written Python"] = lambda: [hand_written_row(e) for e in events]

    best = dict.fromkeys(runs, 0.0)
    for round_no in range(1, args.rounds + 1):
        rates = {label: per_second(n, fn) for label, fn in runs.items()}
        figures = "  ".join(f"{rate:>9,.0f}" for rate in rates.values())
        print(f"  round {round_no}: {figures} /s  ({_ratios(rates)})")
        best = {label: max(best[label], rates[label]) for label in runs}

    print("best round of each:")
    for label, rate in best.items():
        print(f"  {label:<46} {rate:>10,.0f} /s")
    if pybars is None:
        print("  pybars3 not installed: pip install pybars3 to compare (the 'bench' extra)")
    else:
        ratio = best["(a) our engine: render"] / best["(a) pybars3: render"]
        print(f"  ratio ours / pybars3: {ratio:.1f}x (target >= {RENDER_TARGET:.0f}x)")
    rows = best["(b) full row path: route+render+check+compact"] / best["(b) baseline: hand-written Python"]
    print(
        f"  ratio full path / hand-written: {rows:.2f} (target >= {ROWS_TARGET:,} rows/s where hand-written"
        f" did 33,000: a ratio >= {ROWS_RATIO_TARGET:.2f})"
    )


def _ratios(rates: dict[str, float]) -> str:
    """The round's own ratios: both sides of each measured back to back."""
    parts = []
    if "(a) pybars3: render" in rates:
        parts.append(f"ours/pybars3 {rates['(a) our engine: render'] / rates['(a) pybars3: render']:.1f}x")
    rows = rates["(b) full row path: route+render+check+compact"] / rates["(b) baseline: hand-written Python"]
    parts.append(f"rows/hand-written {rows:.2f}")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
