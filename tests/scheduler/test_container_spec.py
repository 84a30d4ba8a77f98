"""The executor's container options and the definition's agree field for field."""

from __future__ import annotations

from dataclasses import fields

from definitions import DockerImageCommand, Mount
from executor.container_options import ContainerOptions, MountSpec
from scheduler.engine import container_options

RENAMED = {"shm_size_mib": "shm_size"}  # the spec says its unit; the wire is Sundial's style
OPTIONS = DockerImageCommand(
    image="busybox",
    command=("true",),
    mounts=(Mount("volume", "cache", "/cache", False), Mount("bind", "/srv/in", "/in")),
    user="1000",
    working_dir="/cache",
    entrypoint=("/bin/sh", "-c"),
    labels={"team": "data"},
    network="none",
    shm_size=64,
    read_only=True,
    cap_drop=("ALL",),
)


def test_every_container_option_has_its_definition_field() -> None:
    command_fields = {f.name for f in fields(DockerImageCommand)}
    assert {RENAMED.get(f.name, f.name) for f in fields(ContainerOptions)} <= command_fields
    assert [f.name for f in fields(MountSpec)] == [f.name for f in fields(Mount)]


def test_every_option_is_carried_over() -> None:
    options = container_options(OPTIONS)
    for spec_field in fields(ContainerOptions):
        value = getattr(options, spec_field.name)
        wire = getattr(OPTIONS, RENAMED.get(spec_field.name, spec_field.name))
        if spec_field.name == "mounts":
            value = tuple(Mount(m.type, m.source, m.target, m.read_only) for m in value)
        assert value == wire, spec_field.name
