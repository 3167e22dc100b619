"""Template engine speed: renders/s beside pybars3, and rows/s through the full row path.

    .venv/bin/pip install pybars3   # the "bench" extra; never a runtime dependency
    .venv/bin/python benchmarks/bench_templates.py [--events 100000]

One core, a 20-field JSON row template over already-decoded events. Prints
figures and ratios against baselines measured in the same run; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time
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


def rate(label: str, n: int, fn: Any) -> float:
    started = time.perf_counter()
    fn()
    per_s = n / (time.perf_counter() - started)
    print(f"  {label:<46} {per_s:>10,.0f} /s")
    return per_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    events = make_events(args.events)
    n = len(events)
    print(f"{n:,} events, 20-field row template, one core")

    ours = compile_template(ROW_TEMPLATE)
    ours_rate = rate("(a) our engine: render", n, lambda: [ours.render(e["PublisherEventData"], data={"event": e}, escape="json") for e in events])
    try:
        import pybars  # type: ignore[import-not-found]

        compiled = pybars.Compiler().compile(PYBARS_TEMPLATE)
        helpers = {"json": lambda this, v: pybars.strlist([json.dumps(v)])}
        pybars_rate = rate("(a) pybars3: render", n, lambda: [compiled(e["PublisherEventData"], helpers=helpers) for e in events])
        print(f"  ratio ours / pybars3: {ours_rate / pybars_rate:.1f}x (target >= 5x)")
    except ImportError:
        print("  pybars3 not installed: pip install pybars3 to compare (the 'bench' extra)")

    payload = parse_payload_template({"COURSE": {"importProcessId": 1, "batchRowTemplate": ROW_TEMPLATE}})
    rows_rate = rate("(b) full row path: route+render+check+compact", n, lambda: [payload.render_row(e) for e in events])
    hand_rate = rate("(b) baseline: hand-written Python", n, lambda: [hand_written_row(e) for e in events])
    print(f"  ratio full path / hand-written: {rows_rate / hand_rate:.2f} (target >= 30,000 rows/s)")


if __name__ == "__main__":
    main()
