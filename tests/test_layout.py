"""The layout is the architecture: read from the files with ``ast``, as a newcomer would see it.

One package per stage, only what every stage shares at the top, no import cycle between
modules, no command importing another command, and no module too long to read in one sitting.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "importer"
STAGES = ("sheet", "rules", "api", "journal", "outputs", "commands", "sandbox")
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The package's modules that *name* imports, at its top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        yield from (target for target in targets if target in modules and target != name)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: set(_imports(name, path, modules)) for name, path in modules.items()}


def test_the_top_level_holds_only_what_every_stage_shares() -> None:
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top
    stages = sorted(path.parent.name for path in PACKAGE.glob("*/__init__.py"))
    assert stages == sorted(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_says_what_it_holds(stage: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text()))
    assert doc is not None, stage
    assert len(doc) > 200, stage


def test_no_import_cycle_between_modules() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            cycle = (*path[path.index(name) :], name)
            pytest.fail(" -> ".join(cycle))
        if name in done:
            return
        for target in sorted(graph[name]):
            # a package importing its own parts to show them on its face is not a cycle
            if not target.startswith(f"{name}."):
                visit(target, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_no_command_imports_another_command() -> None:
    commands = {name for name in _graph() if name.startswith("importer.commands.")}
    shared = {"importer.commands.context"}
    crossing = {
        (name, target)
        for name, targets in _graph().items()
        if name in commands
        for target in targets
        if target in commands - shared
    }
    assert crossing == set()


def test_stages_only_look_downstream_of_commands() -> None:
    """Below the commands, nothing imports a command: they are the top of the data's way."""
    upward = {
        (name, target)
        for name, targets in _graph().items()
        if not name.startswith(("importer.commands", "importer.cli", "importer.__main__"))
        for target in targets
        if target.startswith("importer.commands")
    }
    assert upward == set()


def test_no_module_is_too_long_to_read() -> None:
    long = {
        name: lines
        for name, path in _modules().items()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
