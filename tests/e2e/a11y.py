"""axe-core in the browser tests: the engine is injected from node_modules (npm axe-core, never a CDN) and run
on the whole page; serious and critical violations fail the test, each named with its rule, its help text
and the elements it found."""

from __future__ import annotations

from .conftest import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
FAILING = ("serious", "critical")


_SOURCE: list[str] = []


def _source() -> str:
    if not _SOURCE:
        _SOURCE.append(AXE.read_text(encoding="utf-8"))
    return _SOURCE[0]


def axe_violations(page) -> list[dict]:
    """The serious and critical violations of axe-core's rules on the page as it is now."""
    assert AXE.exists(), f"axe-core is missing ({AXE}): run `make web` (npm ci)"
    if not page.evaluate("() => !!window.axe"):
        # evaluated through the DevTools protocol: the pages' Content-Security-Policy (script-src 'self') stays on
        page.evaluate(_source() + "\n;true")
    result = page.evaluate(
        """async () => {
          const r = await window.axe.run(document, { resultTypes: ['violations'] });
          return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
        }"""
    )
    return [v for v in result if v["impact"] in FAILING]


def describe(where: str, violations: list[dict]) -> str:
    return "\n".join(f"{where}: [{v['impact']}] {v['id']} — {v['help']} — {v['nodes']}" for v in violations)
