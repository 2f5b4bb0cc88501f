"""What the image installs, built the way deploy/Dockerfile builds it (no Docker engine needed).

The Dockerfile copies a few paths into its build stage and installs the wheel `pip` makes of them. Here the
same paths are copied, the same wheel is made, and the installed copy must hold every file of the
packages and be able to load all four services and their migrations, away from the work tree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT
from tests.deploy.conftest import DEPLOY

SKIPPED = ("__pycache__",)


def build_stage_copies() -> list[str]:
    """The sources of the COPY instructions of the Dockerfile's build stage."""
    build = re.split(r"(?m)^FROM ", (DEPLOY / "Dockerfile").read_text())[1]
    sources: list[str] = []
    for line in re.findall(r"(?m)^COPY (?!--from)(.+)$", build):
        sources += line.split()[:-1]
    return sources


def test_the_wheel_the_image_installs_holds_every_file_and_loads_every_service(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    copies = build_stage_copies()
    assert {"pyproject.toml", "juwei", "services"} <= set(copies)
    for source in copies:
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns(*SKIPPED, "*.pyc"))
        else:
            shutil.copy2(origin, context / source)
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels), str(context)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("juwei-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        path.relative_to(context).as_posix()
        for package in ("juwei", "services")
        for path in (context / package).rglob("*")
        if path.is_file()
    }
    assert sorted(sources - packaged) == [], "files the image would lack: add them to package-data in pyproject.toml"

    target = tmp_path / "installed"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    probe = (
        "import juwei, juwei.cli\n"
        "from juwei.service import available_services, load_definition\n"
        "names = available_services()\n"
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
