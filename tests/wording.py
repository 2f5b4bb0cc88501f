"""Whether a service says every rule it raises in Chinese: its source is read (``ast``), not run.

Each ``raise Invalid(..., code="x", household=h)`` (any call with a constant ``code=``) and each
``Problem(status, detail, "x", ...)`` is a rule the service may answer with; its Chinese wording
(``ServiceDefinition.wording``) must exist and may only name the details that every such call gives.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Formatter


@dataclass(frozen=True)
class Raised:
    code: str
    where: str
    names: frozenset[str] | None  # the details it gives; None when it passes ``**details`` (not known here)


def _code_of(call: ast.Call) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == "code" and isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
            return keyword.value.value
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
    if name == "Problem" and len(call.args) >= 3:
        third = call.args[2]
        if isinstance(third, ast.Constant) and isinstance(third.value, str):
            return third.value
    return None


def raised_rules(package: Path) -> list[Raised]:
    """Every rule code the package's source raises, with where and the details each call gives."""
    found: list[Raised] = []
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or (code := _code_of(node)) is None:
                continue
            given = [k.arg for k in node.keywords if k.arg != "code"]
            names = None if None in given else frozenset(str(g) for g in given)
            found.append(Raised(code, f"{path.name}:{node.lineno}", names))
    return found


def placeholders(wording: str) -> set[str]:
    return {field.split(".", 1)[0].split("[", 1)[0] for _, field, _, _ in Formatter().parse(wording) if field}


def unsaid(package: Path, wording: Mapping[str, str]) -> list[str]:
    """What is wrong with a service's Chinese wording: rules it lacks, and values it names that a call omits."""
    wrong: list[str] = []
    for rule in raised_rules(package):
        if rule.code not in wording:
            wrong.append(f"{rule.where}: no Chinese for {rule.code}")
        elif rule.names is not None and (absent := placeholders(wording[rule.code]) - rule.names):
            wrong.append(f"{rule.where}: {rule.code} names {sorted(absent)}, which this call does not give")
    return wrong
