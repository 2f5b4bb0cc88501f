"""The one-way house, checked on the source: who may import whom, read from every module's imports with ``ast``.

- the kernel (``juwei``) knows no service: it imports no ``services``, ``contracts``, ``composition`` or ``demo``
  (the suite is found by registration, ``juwei.registration``);
- ``contracts`` (the published events, roles and id helpers) imports only the kernel and itself;
- a service (``services/<a>/``) imports only the kernel, ``contracts`` and itself: services know each other
  through events alone;
- the console (``console``) imports only the kernel, ``contracts`` and itself: it reaches the services over HTTP;
- a domain module (``services/<a>/domain.py`` or ``domain/``) does no I/O: no SQLAlchemy, no web framework, no
  HTTP client, no store, repository, unit of work or runtime;
- no circle of imports: neither among modules (imports at module level) nor among the project's packages.

Every import counts for the layering rules, also one deferred into a function or written for type checkers
only: a deferred import is still a dependency. The checker is tried on made-up sources too, so a rule that
stopped biting would show.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The project's own top-level packages; everything else imported is the standard library or third-party.
PROJECT = ("juwei", "contracts", "services", "composition", "demo", "bench", "tests", "console")
SOURCES = ("juwei", "contracts", "services", "composition", "demo", "bench", "console")
# What a domain module may not touch: storage, the web, the network, and the kernel's I/O.
DOMAIN_FORBIDDEN = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "httpx",
    "aiokafka",
    "confluent_kafka",
    "juwei.store",
    "juwei.repository",
    "juwei.unit_of_work",
    "juwei.service",
    "juwei.database",
    "juwei.relay",
    "juwei.consumer",
    "juwei.vault",
)


@dataclass(frozen=True)
class Import:
    module: str  # the module imported, absolute (for ``from a import b``: ``a.b`` when that is a module, else ``a``)
    line: int
    top_level: bool  # at module level and not only for type checkers: runs when the importer is imported


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(
    source: str, name: str, is_package: bool = False, known: Iterable[str] = (), path: str = "<source>"
) -> list[Import]:
    """The imports of a module's source; ``known``: the project's module names (to tell ``from a import b``
    of a submodule ``b`` from that of a name ``b``)."""
    modules = set(known)
    tree = ast.parse(source, filename=path)
    found: list[Import] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for inner in child.body:
                    visit_one(inner, False)
                for inner in child.orelse:
                    visit_one(inner, top)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False)
            else:
                visit_one(child, top)

    def visit_one(child: ast.AST, top: bool) -> None:
        if isinstance(child, ast.Import):
            found.extend(Import(alias.name, child.lineno, top) for alias in child.names)
        elif isinstance(child, ast.ImportFrom):
            base = _absolute(child, name, is_package)
            for alias in child.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(sub if sub in modules else base, child.lineno, top))
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            visit(child, False)
        else:
            visit(child, top)

    visit(tree, True)
    return found


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = name.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _project(module: str) -> bool:
    return module.split(".")[0] in PROJECT


def refusals(importer: str, imported: Iterable[Import]) -> list[str]:
    """Every import of ``importer`` that breaks a rule of the house, each said in a line."""
    wrong: list[str] = []
    top = importer.split(".")[0]
    for found in imported:
        target = found.module
        if top == "juwei" and _project(target) and not _inside(target, "juwei"):
            wrong.append(f"{importer}:{found.line} imports {target}: the kernel knows no service")
        if top == "contracts" and _project(target) and not (_inside(target, "juwei") or _inside(target, "contracts")):
            wrong.append(f"{importer}:{found.line} imports {target}: contracts build on the kernel alone")
        if (
            top == "console"
            and _project(target)
            and not any(_inside(target, p) for p in ("juwei", "contracts", "console"))
        ):
            wrong.append(f"{importer}:{found.line} imports {target}: the console reaches the services over HTTP alone")
        if top == "services":
            own = ".".join(importer.split(".")[:2])
            if _project(target) and not any(_inside(target, p) for p in ("juwei", "contracts", own)):
                wrong.append(
                    f"{importer}:{found.line} imports {target}: a service imports the kernel, contracts, itself"
                )
            parts = importer.split(".")
            if len(parts) >= 3 and parts[2] == "domain":
                for forbidden in DOMAIN_FORBIDDEN:
                    if _inside(target, forbidden):
                        wrong.append(f"{importer}:{found.line} imports {target}: the domain does no I/O")
    return wrong


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles in a directed graph (one per strongly connected component of more than one node, or a loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:  # Tarjan's algorithm, iterative enough for this project's depth
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _package_of(module: str) -> str:
    """The unit of the package-level graph: a service (``services.residents``) or a top-level package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "services" and len(parts) > 1 else parts[0]


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


def project_modules(root: Path = ROOT) -> Iterator[Module]:
    for source in SOURCES:
        for path in sorted((root / source).rglob("*.py")):
            yield Module(module_name(path, root), path, path.name == "__init__.py")


@pytest.fixture(scope="module")
def house() -> dict[str, list[Import]]:
    modules = list(project_modules())
    known = {m.name for m in modules}
    return {m.name: imports_of(m.path.read_text(), m.name, m.is_package, known, str(m.path)) for m in modules}


def test_the_house_has_its_rooms(house: dict[str, list[Import]]) -> None:
    """The check reads the real tree (a wrong root would pass every rule vacuously)."""
    for expected in (
        "juwei.unit_of_work",
        "contracts.residents",
        "services.notify.domain",
        "composition.commands",
        "console.app",
    ):
        assert expected in house
    assert sum(1 for name in house if name.startswith("services.")) > 40


def test_every_import_keeps_the_rules_of_the_house(house: dict[str, list[Import]]) -> None:
    wrong = [line for importer, imported in sorted(house.items()) for line in refusals(importer, imported)]
    assert not wrong, "\n".join(wrong)


def test_no_circle_of_imports_among_modules(house: dict[str, list[Import]]) -> None:
    graph = {
        importer: {i.module for i in imported if i.top_level and i.module in house and i.module != importer}
        for importer, imported in house.items()
    }
    assert not cycles(graph), cycles(graph)


def test_no_circle_of_imports_among_packages(house: dict[str, list[Import]]) -> None:
    """Counting every import, deferred ones too: a circle of packages is one however late it closes."""
    graph: dict[str, set[str]] = {}
    for importer, imported in house.items():
        source = _package_of(importer)
        for found in imported:
            if _project(found.module) and _package_of(found.module) != source:
                graph.setdefault(source, set()).add(_package_of(found.module))
    assert not cycles(graph), cycles(graph)


# --- the checker on made-up sources: each rule bites ---------------------------------------------------------

KERNEL = "kernel knows no service"
BROKEN = [
    pytest.param("juwei.cli", "from services.residents import retention\n", KERNEL, id="kernel-service"),
    pytest.param("juwei.cli", "def main():\n    import demo.scenario\n", KERNEL, id="kernel-deferred"),
    pytest.param("juwei.settings", "from composition import catalogue\n", KERNEL, id="kernel-top"),
    pytest.param("juwei.events", "import contracts.roles\n", KERNEL, id="kernel-contracts"),
    pytest.param(
        "juwei.service",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from services.notify.app import x\n",
        KERNEL,
        id="kernel-type-checking",
    ),
    pytest.param("contracts.testing", "from services.testing import events\n", "contracts build", id="contracts"),
    pytest.param(
        "services.residents.handlers", "from services.testing.events import CaseConfirmed\n", "a service", id="peer"
    ),
    pytest.param("services.supplies.app", "from ..residents import events\n", "a service", id="peer-relative"),
    pytest.param("services.notify.app", "import demo.sinks\n", "a service", id="service-demo"),
    pytest.param("services.notify.domain", "from sqlalchemy import select\n", "no I/O", id="domain-sqlalchemy"),
    pytest.param("services.testing.domain.rounds", "import fastapi\n", "no I/O", id="domain-package-fastapi"),
    pytest.param("services.supplies.domain", "from juwei.store import EventStore\n", "no I/O", id="domain-store"),
    pytest.param("services.residents.domain.households", "from juwei import repository\n", "no I/O", id="domain-repo"),
    pytest.param("console.pages.overview", "from services.testing import views\n", "over HTTP", id="console-service"),
    pytest.param("console.cli", "def f():\n    import composition\n", "over HTTP", id="console-composition"),
]


@pytest.mark.parametrize(("importer", "source", "rule"), BROKEN)
def test_the_checker_refuses_what_breaks_a_rule(importer: str, source: str, rule: str) -> None:
    known = {"juwei.repository", "services.residents.retention", "composition.catalogue"}
    is_package = importer.endswith(".domain") and importer.startswith("services.testing")
    found = refusals(importer, imports_of(source, importer, is_package, known))
    assert found and all(rule in line for line in found), found


ALLOWED = [
    pytest.param("services.residents.handlers", "from contracts.testing import CaseConfirmed\n", id="contract"),
    pytest.param("services.supplies.application.batches", "from ..domain import Batch\n", id="own-relative"),
    pytest.param("services.notify.views", "from sqlalchemy import Table\nimport juwei.store\n", id="views-storage"),
    pytest.param("services.notify.domain", "from juwei.aggregate import Aggregate\nimport math\n", id="domain-pure"),
    pytest.param("contracts.notify", "from juwei.events import DomainEvent\nimport pydantic\n", id="contracts-kernel"),
    pytest.param("composition.commands", "from demo.scenario import run_demo\n", id="top-layer"),
    pytest.param("juwei.cli", "from juwei.registration import suite\nimport typer\n", id="kernel-itself"),
    pytest.param("console.navigation", "from contracts.roles import HOUSEHOLD\nimport juwei.database\n", id="console"),
]


@pytest.mark.parametrize(("importer", "source"), ALLOWED)
def test_the_checker_lets_the_rules_own_imports_pass(importer: str, source: str) -> None:
    assert refusals(importer, imports_of(source, importer)) == []


def test_the_checker_finds_a_circle() -> None:
    modules = {"a": "import b\n", "b": "from c import x\n", "c": "import a\n", "d": "def f():\n    import a\n"}
    house = {name: imports_of(source, name) for name, source in modules.items()}
    graph = {name: {i.module for i in imported if i.top_level} for name, imported in house.items()}
    assert cycles(graph) == [["a", "b", "c"]]
    graph["c"] = set()
    assert cycles(graph) == []
    assert cycles({"a": {"a"}}) == [["a"]]
