"""The package's concerns depend on each other one way only, so a newcomer can read it bottom up.

The foundation (settings, errors, redaction, logs, clients, key names) knows no concern; queue
layouts and the servers' facts and refusals know only the foundation; the start-up decision, the mover/status and the report sit on
layouts without knowing each other; supervision uses the decision and the mover; the demo uses
everything. Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "supervisor"
RANK = {
    "foundation": 0,
    "layouts": 1,
    "servers": 1,
    "toss": 2,
    "migration": 2,
    "report": 2,
    "supervision": 3,
    "demo": 4,
}


def concern(module: str) -> str | None:
    """`supervisor.toss.decide` -> `toss`; top-level modules are the foundation; cli is above all."""
    parts = module.split(".")
    if parts[0] != "supervisor" or len(parts) < 2 or parts[1] in ("cli", "__main__"):
        return None
    return parts[1] if parts[1] in RANK else "foundation"


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("supervisor.")}


def module_name(path: Path) -> str:
    return ".".join(("supervisor", *path.relative_to(PACKAGE).with_suffix("").parts))


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_concern_imports_only_itself_and_the_concerns_below_it(path: Path) -> None:
    own = concern(module_name(path))
    if own is None:
        return
    wrong = sorted(
        name
        for name in imported_modules(path)
        if (other := concern(name)) is not None and other != own and RANK[other] >= RANK[own]
    )
    assert not wrong, f"{module_name(path)} ({own}) imports {wrong}"


def test_every_subpackage_is_a_known_concern() -> None:
    packages = {p.parent.relative_to(PACKAGE).parts[0] for p in PACKAGE.glob("*/__init__.py")}
    assert packages == set(RANK) - {"foundation"}
