"""Every import is declared in pyproject.toml, and every declared dependency is imported.

A package that arrives only because another one depends on it (``sounddevice`` came with
mediapipe) breaks the day that other package drops it. The imports are read with ``ast`` from
the source, mapped to the distributions that provide them (``importlib.metadata``), and
compared with pyproject's dependencies: the project's code against ``dependencies``, the
benchmark drivers also against the ``bench`` extra, the tests against ``test`` too.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"singer", "stage", "streams", "rigs", "mocap", "tests", "benchmarks", "scripts"}
CODE = ("singer", "stage", "streams", "rigs", "mocap", "benchmarks", "scripts")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.strip())
    assert match, spec
    return normalise(match.group())


def declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {"dependencies": {requirement_name(s) for s in project["dependencies"]}}
    for extra, specs in project.get("optional-dependencies", {}).items():
        out[extra] = {requirement_name(s) for s in specs}
    return out


def imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in one file (third-party and stdlib alike)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@cache
def module_distributions() -> dict[str, set[str]]:
    """Top-level module -> distributions providing it, including extension modules that
    ``packages_distributions`` (which only looks at .py files) leaves out."""
    out = {m: {normalise(d) for d in ds} for m, ds in md.packages_distributions().items()}
    for dist in md.distributions():
        for file in dist.files or ():
            if len(file.parts) == 1 and file.suffix in (".so", ".pyd"):
                out.setdefault(file.name.split(".")[0], set()).add(normalise(dist.name))
    return out


def third_party(path: Path) -> set[str]:
    return {m for m in imports(path) if m not in sys.stdlib_module_names and m not in FIRST_PARTY}


def python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def allowed_for(path: Path, groups: dict[str, set[str]]) -> set[str]:
    allowed = set(groups["dependencies"])
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "benchmarks" or "bench" in rel.parts[:-1] or rel.name.startswith("bench"):
        allowed |= groups.get("bench", set())
    if rel.parts[0] in ("tests", "scripts"):  # scripts are developer tools run from the test env
        allowed |= groups.get("test", set()) | groups.get("bench", set())
    return allowed


def undeclared_imports(folders: tuple[str, ...]) -> list[str]:
    groups, dists = declared(), module_distributions()
    problems = []
    for folder in folders:
        for path in python_files(folder):
            allowed = allowed_for(path, groups)
            for module in sorted(third_party(path)):
                providers = dists.get(module)
                if not providers:
                    problems.append(f"{path.relative_to(ROOT)}: imports {module}, which no "
                                    "installed distribution provides")
                elif not providers & allowed:
                    problems.append(f"{path.relative_to(ROOT)}: imports {module} from "
                                    f"{'/'.join(sorted(providers))}, not declared in "
                                    "pyproject.toml")
    return problems


def test_every_import_of_the_code_is_a_declared_dependency() -> None:
    assert undeclared_imports(CODE) == []


def test_every_import_of_the_tests_is_declared_too() -> None:
    assert undeclared_imports(("tests",)) == []


def test_every_declared_dependency_is_imported_somewhere() -> None:
    groups, dists = declared(), module_distributions()
    used: dict[str, set[str]] = {}
    for folder in (*CODE, "tests"):
        for path in python_files(folder):
            for module in third_party(path):
                for dist in dists.get(module, ()):
                    used.setdefault(dist, set()).add(folder)
    # tools run as commands, not imported; setuptools<81 is there for pyworld's own
    # ``import pkg_resources`` (a runtime need nobody imports by name)
    tools = {"ruff", "mypy", "pytest-asyncio", "pytest-timeout", "setuptools"}
    unused = sorted(d for group in groups.values() for d in group
                    if d not in used and d not in tools)
    assert unused == [], f"declared but never imported: {unused}"
    code_used = {d for d, folders in used.items() if folders - {"tests"}}
    runtime_only_in_tests = sorted(groups["dependencies"] - code_used - tools)
    assert runtime_only_in_tests == [], (
        f"runtime dependencies only the tests import (move them to the test extra): "
        f"{runtime_only_in_tests}")

