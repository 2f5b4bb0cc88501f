"""One job per module (issue 16): no module of the project's own code over 600 lines, migrations aside.

A module that long has almost always grown a second job; the rule is checked here so it cannot creep back.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where the project's own code lives; tests and benchmarks' measuring scripts are not held to it.
SOURCES = ("juwei", "contracts", "services", "composition", "demo", "console")
LIMIT = 600


def too_long(root: Path, limit: int = LIMIT) -> dict[str, int]:
    """Modules over ``limit`` lines under ``root``'s sources, Alembic's generated migrations left out."""
    found = {}
    for source in SOURCES:
        for path in (root / source).rglob("*.py"):
            if "migrations" in path.relative_to(root).parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                found[str(path.relative_to(root))] = lines
    return found


def test_no_module_of_the_project_is_over_600_lines() -> None:
    assert too_long(ROOT) == {}


def test_the_check_sees_a_long_module_and_leaves_migrations_out(tmp_path: Path) -> None:
    (tmp_path / "juwei" / "migrations").mkdir(parents=True)
    (tmp_path / "juwei" / "long.py").write_text("x = 1\n" * 601)
    (tmp_path / "juwei" / "short.py").write_text("x = 1\n" * 600)
    (tmp_path / "juwei" / "migrations" / "0001_long.py").write_text("x = 1\n" * 900)
    assert too_long(tmp_path) == {"juwei/long.py": 601}
