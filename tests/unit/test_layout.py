"""The code layout stays as ARCHITECTURE.md ("Code layout") says: imports point one way.

Read from the source (``ast``), every import counts, also one inside a
function: a lazy import is still a dependency.

- ``schemas`` imports nothing of ours;
- ``hub_stream`` never imports ``api`` or ``agents`` (the CLI loads those by name);
- inside ``hub_stream``, each domain imports only the domains listed for it
  in ``ALLOWED`` (``platform`` and ``templating`` none);
- no two modules of ``agents`` import each other, directly or through others.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# domain -> the other domains of hub_stream it may import
ALLOWED: dict[str, set[str]] = {
    "platform": set(),
    "templating": set(),
    "events": {"platform"},
    "access": {"platform"},
    "subscriptions": {"platform", "templating"},
    "sync": {"platform", "templating", "events", "subscriptions", "access"},
    "local": {"platform", "access"},
    # top-level modules of hub_stream: the CLI, which wires everything
    "cli": {"platform", "templating", "events", "access", "subscriptions", "sync", "local"},
}


def imported_modules(source: str, module: str) -> set[str]:
    """Every module ``source`` (the text of ``module``, dotted) imports, as absolute dotted names."""
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def domain_of(module: str) -> str | None:
    """The hub_stream domain of a dotted module name (None outside hub_stream)."""
    parts = module.split(".")
    if parts[0] != "hub_stream" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in ALLOWED else "cli"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def violations(modules: dict[str, str]) -> list[str]:
    """Every import of ``modules`` (dotted name -> source) that breaks the rules above."""
    found: list[str] = []
    for module, source in modules.items():
        top = module.split(".")[0]
        for target in imported_modules(source, module):
            target_top = target.split(".")[0]
            if top == "schemas" and target_top in {"hub_stream", "api", "agents"}:
                found.append(f"{module} imports {target}: schemas imports nothing of ours")
            if top == "hub_stream" and target_top in {"api", "agents"}:
                found.append(f"{module} imports {target}: hub_stream never imports api or agents")
            if top == "hub_stream":
                mine, theirs = domain_of(module), domain_of(target)
                if theirs is None or theirs == mine or theirs == "cli" and target == "hub_stream":
                    continue
                if mine != "cli" and theirs not in ALLOWED[mine or "cli"]:
                    found.append(f"{module} imports {target}: {mine} may import only {sorted(ALLOWED[mine or 'cli'])}")
    found.extend(agent_cycles(modules))
    return found


def agent_cycles(modules: dict[str, str]) -> list[str]:
    """Cycles among the modules of ``agents`` (a package counts as one with its modules)."""
    agents = {m for m in modules if m.split(".")[0] == "agents"}
    unit = {m: ".".join(m.split(".")[:2]) for m in agents}  # agents.intake.x -> agents.intake
    graph: dict[str, set[str]] = {u: set() for u in unit.values()}
    for m in agents:
        for target in imported_modules(modules[m], m):
            # the most specific module the name refers to (``agents.x.y`` is x's, not the package's)
            owners = [o for o in agents if target == o or target.startswith(o + ".")]
            if owners:
                other = max(owners, key=len)
                if unit[other] != unit[m]:
                    graph[unit[m]].add(unit[other])
    cycles: list[str] = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycles.append("agents import each other: " + " -> ".join([*path, start]))
                elif nxt not in path and nxt > start:
                    stack.append((nxt, [*path, nxt]))
    return cycles


def project_modules() -> dict[str, str]:
    files = [p for top in ("hub_stream", "agents", "api", "schemas") for p in (ROOT / top).rglob("*.py")]
    return {module_name(p): p.read_text() for p in files}


def test_the_project_keeps_its_import_directions() -> None:
    assert violations(project_modules()) == []


def test_every_hub_stream_package_is_a_known_domain() -> None:
    packages = {p.parent.name for p in (ROOT / "hub_stream").glob("*/__init__.py")}
    assert packages <= set(ALLOWED), f"a new domain needs its line in ALLOWED: {packages - set(ALLOWED)}"


@pytest.mark.parametrize(
    ("module", "source", "complaint"),
    [
        ("hub_stream.platform.settings", "from hub_stream.sync.ledger import x\n", "platform may import only []"),
        ("hub_stream.templating.runtime", "def f():\n    import hub_stream.events.records\n", "templating may import only"),
        ("hub_stream.sync.delivery", "from api.app import create_app\n", "hub_stream never imports api"),
        ("hub_stream.events.log", "from agents import tables\n", "hub_stream never imports api or agents"),
        ("hub_stream.events.log", "from hub_stream.sync import plan\n", "events may import only ['platform']"),
        ("schemas.events", "from hub_stream.platform import settings\n", "schemas imports nothing of ours"),
    ],
)
def test_a_backward_import_is_caught(module: str, source: str, complaint: str) -> None:
    modules = project_modules()
    modules[module] = source
    assert any(complaint in v for v in violations(modules)), violations(modules)


def test_agents_that_import_each_other_are_caught() -> None:
    modules = project_modules()
    modules["agents.sync_agent"] += "\nfrom agents.subscriptions_agent import register\n"
    modules["agents.subscriptions_agent"] += "\nfrom agents.sync_agent import register\n"
    assert any("agents import each other" in v for v in violations(modules))
