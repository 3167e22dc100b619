"""Headless Debian Chromium for the browser tests; the console driven by Playwright, with axe-core.

Playwright's Python package talks to the system Chromium (``executable_path``);
it downloads no browser. axe-core is vendored for the tests only
(tests/vendor/axe-core, re-fetched and checked by scripts/fetch-axe-core.sh).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Keep Chromium off the network entirely (the tests need only the loopback hub).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def artifacts_dir() -> Path:
    """Where screenshots go: $HUB_TEST_ARTIFACTS/console, else tests/artifacts/console (gitignored)."""
    base = Path(os.environ.get("HUB_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
    out = base / "console"
    out.mkdir(parents=True, exist_ok=True)
    return out


class Audit:
    """Screenshots and axe-core results of each page visited, for the report at the end."""

    def __init__(self, page: Any, out: Path) -> None:
        self.page = page
        self.out = out
        self.axe_source = AXE.read_text()
        self.shots: list[Path] = []
        self.axe: dict[str, dict[str, list[str]]] = {}
        self.serious: list[str] = []

    async def shot(self, name: str) -> Path:
        path = self.out / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    async def check(self, name: str) -> None:
        """A screenshot and an axe-core run of the page as it is now."""
        await self.shot(name)
        # Evaluated over the DevTools protocol, which the page's CSP does not govern.
        if not await self.page.evaluate("() => typeof window.axe === 'object'"):
            await self.page.evaluate(self.axe_source + "\n;undefined")
        result = await self.page.evaluate(
            "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
            " return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,"
            " targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }"
        )
        found: dict[str, list[str]] = {}
        for violation in result:
            found.setdefault(violation["impact"] or "none", []).append(violation["id"])
            if violation["impact"] in ("serious", "critical"):
                self.serious.append(
                    f"{name}: {violation['id']} ({violation['impact']}) at {violation['targets']}"
                )
        self.axe[name] = found

    def report(self) -> str:
        lines = ["console screenshots:"] + [f"  {p}" for p in self.shots]
        lines.append("axe-core violations by page (impact: rule ids):")
        for name, found in self.axe.items():
            shown = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(found.items())) or "none"
            lines.append(f"  {name}: {shown}")
        return "\n".join(lines)
