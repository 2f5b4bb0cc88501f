"""Where the images' root comes from, on the real engine: the operator's base image, else debootstrap's."""

from __future__ import annotations

from typing import Any

import pytest

from juwei.engine import check_engine
from juwei.images import BuildSettings, ImageBuilder
from tests.conftest import TEST_HOME
from tests.stack.conftest import DockerEngine

pytestmark = pytest.mark.timeout(1800, func_only=True)


def test_the_root_is_the_operators_base_image_when_it_is_here_else_the_debootstrap_root(
    docker_engine: DockerEngine, stack_images: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in docker_engine.environment.items():
        monkeypatch.setenv(name, value)
    data = TEST_HOME / "stack" / "data"
    engine = check_engine(data)
    said: list[str] = []
    rootfs = ImageBuilder(engine, BuildSettings(data_dir=data), say=said.append).root_image()
    assert rootfs.startswith("juwei/rootfs:bookworm-")
    assert said == []  # made by the session's build: reused, not made again

    # An operator's own Debian image (here: that root, as their registry would have it) is used as it is.
    own = "registry.district.example/library/debian:12"
    docker_engine.docker("tag", rootfs, own)
    try:
        chosen = ImageBuilder(engine, BuildSettings(data_dir=data, base_image=own), say=said.append).root_image()
        assert chosen == own and said == []
    finally:
        docker_engine.docker("rmi", own)

    # One that is neither here nor reachable: said so, and the debootstrap root instead.
    absent = "registry.invalid/library/debian:12"
    chosen = ImageBuilder(engine, BuildSettings(data_dir=data, base_image=absent), say=said.append).root_image()
    assert chosen == rootfs
    assert any(f"could not pull {absent}" in line and "debootstrap" in line for line in said), said
