"""What the service image installs, built the way `juwei images build` builds it (no Docker engine needed).

The image installs Juwei's wheel, built on the host from a clean copy of what the wheel is made of. Here the
same wheel is made by the same function; the installed copy must hold every file of the packages (data such
as migrations and the offline API docs included) and load all four services, away from the work tree.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from juwei.images import build_wheel, packaged_paths
from tests.conftest import ROOT


def test_the_wheel_the_image_installs_holds_every_file_and_loads_every_service(tmp_path: Path) -> None:
    included = {path.name for path in packaged_paths(ROOT)}
    assert {"pyproject.toml", "README.md", "juwei", "services"} <= included
    wheel = build_wheel(ROOT, tmp_path / "wheels", tmp_path / "scratch")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        path.relative_to(ROOT).as_posix()
        for package in ("juwei", "services")
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert sorted(sources - packaged) == [], "files the image would lack: add them to package-data in pyproject.toml"
    assert "juwei/static/swagger-ui/swagger-ui-bundle.js" in packaged  # /docs without a CDN

    target = tmp_path / "installed"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    probe = (
        "import juwei, juwei.cli\n"
        "from juwei.registration import suite\n"
        "from juwei.service import load_definition\n"
        "names = suite().names\n"
        "for name in names:\n"
        "    definition = load_definition(name)\n"
        "    assert definition.migrations is None or definition.migrations.is_dir(), definition.migrations\n"
        "print(juwei.__file__)\n"
        "print(' '.join(names))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    where, names = loaded.stdout.splitlines()
    assert Path(where).is_relative_to(target)  # the installed copy, not the work tree
    expected = " ".join(
        n for n in ("residents", "supplies", "testing", "notify") if (ROOT / "services" / n / "app.py").exists()
    )
    assert names == expected


def test_the_lock_pins_every_dependency_of_the_project_with_hashes() -> None:
    """deploy/requirements.lock covers pyproject's dependencies, each with a version that satisfies it."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = (ROOT / "deploy" / "requirements.lock").read_text()
    pinned: dict[str, str] = {}
    for block in lock.split("\n"):
        if block and not block[0].isspace() and not block.startswith("#") and "==" in block:
            name, _, version = block.split(" ")[0].partition("==")
            pinned[canonicalize_name(name)] = version
    assert lock.count("--hash=sha256:") >= len(pinned)  # every pin carries its hashes
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        wanted = Requirement(text)
        name = canonicalize_name(wanted.name)
        assert name in pinned, f"{wanted.name} is not in deploy/requirements.lock: run `make lock`"
        assert wanted.specifier.contains(pinned[name], prereleases=True), f"{name}=={pinned[name]} vs {wanted}"
