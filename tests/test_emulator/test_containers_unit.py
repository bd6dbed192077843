"""Pure logic of container tasks: registries and credentials, the client's arguments, validation, redaction."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from batch_emulator.__main__ import parse_args
from batch_emulator.errors import InvalidPropertyValue, MissingRequiredProperty
from batch_emulator.models.containers import validate_container_configuration, validate_container_settings
from batch_emulator.node.containers.images import credential_for, pull_image, registry_of
from batch_emulator.node.containers.launch import container_name, run_arguments
from batch_emulator.node.containers.runtime import ContainerRuntime, RuntimeNotFoundError, detect_runtime, runtime_for
from batch_emulator.node.containers.settings import container_run_spec
from batch_emulator.node.containers.spec import RegistryCredential
from batch_emulator.node.layout import task_paths
from batch_emulator.node.spec import TaskRunSpec
from batch_emulator.render import without_secrets

PODMAN = ContainerRuntime("podman", "/usr/bin/podman", "4.3.1", ("--runtime", "runc"), {"CONTAINERS_CONF": "/c"})


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("ubuntu:22.04", "docker.io"),
        ("library/ubuntu", "docker.io"),
        ("myacr.azurecr.io/team/app:1", "myacr.azurecr.io"),
        ("localhost/batchpipe-test/busybox:1", "localhost"),
        ("registry:5000/app", "registry:5000"),
    ],
)
def test_the_registry_of_an_image_follows_dockers_rule(image: str, registry: str) -> None:
    assert registry_of(image) == registry


def test_credentials_are_chosen_by_registry_and_the_tasks_own_come_first() -> None:
    task_own = RegistryCredential("https://myacr.azurecr.io", "task-user", "p1")
    pool_acr = RegistryCredential("myacr.azurecr.io", "pool-user", "p2")
    hub = RegistryCredential("", "hub-user", "p3")
    identity_only = RegistryCredential("other.io", identity="/subscriptions/x/identity")
    registries = (task_own, pool_acr, hub, identity_only)
    assert credential_for("myacr.azurecr.io/app:1", registries) is task_own
    assert credential_for("ubuntu:22.04", registries) is hub
    assert credential_for("other.io/app", registries) is None  # an identity gives no credential locally
    assert "p1" not in repr(task_own)


def job_spec(tmp_path: Path, **extra: Any) -> TaskRunSpec:
    return TaskRunSpec(
        kind="job",
        account_name="acct",
        pool_id="pool",
        node_id="node",
        node_root=tmp_path / "node",
        job_id="job",
        task_id="task",
        command_line="/bin/sh -c 'echo $X'",
        resource_files=[],
        environment_settings=[],
        output_files=[],
        max_wall_clock_seconds=None,
        retry_count=1,
        attempt=4,
        **extra,
    )


def test_the_run_arguments_mount_batch_directories_and_pass_variables_by_name(tmp_path: Path) -> None:
    settings = {
        "imageName": "localhost/app:1",
        "containerRunOptions": "--cpus 1",
        "containerHostBatchBindMounts": [{"source": "Shared", "isReadOnly": True}],
    }
    container = container_run_spec(PODMAN, settings, {"type": "dockerCompatible"})
    spec = job_spec(tmp_path, container=container)
    paths = task_paths(spec)
    argv, env = run_arguments(spec, container, paths, {"X": "secret value", "PATH": "/opt/bin"})
    shared = tmp_path / "node" / "shared"
    assert argv[:3] == ["/usr/bin/podman", "--runtime", "runc"]
    mounts = [argv[index + 1] for index, arg in enumerate(argv) if arg == "-v"]
    # Only what was asked for, plus the task's own directory, at the same paths as on the node.
    assert mounts == [f"{shared}:{shared}:ro", f"{paths.task_dir}:{paths.task_dir}"]
    assert argv[argv.index("-w") + 1] == str(paths.working_dir)
    assert "X" in argv
    assert "secret value" not in " ".join(argv)
    assert env["X"] == "secret value"
    assert env["CONTAINERS_CONF"] == "/c"
    assert "PATH=/opt/bin" in argv
    assert env["PATH"] != "/opt/bin"
    assert argv[-3:] == ["--cpus", "1", "localhost/app:1"]  # the command line follows the image
    assert argv[argv.index("--name") + 1] == container_name(spec) == container_name(job_spec(tmp_path))
    assert container_name(spec).endswith("-1-4")  # retry and attempt make the name unique per run


def test_without_mounts_the_whole_node_root_is_mounted_and_the_image_directory_can_be_kept(tmp_path: Path) -> None:
    settings = {"imageName": "app", "workingDirectory": "containerImageDefault", "containerRunOptions": "--net none"}
    container = container_run_spec(runtime_for("/usr/bin/docker", tmp_path), settings, {"type": "dockerCompatible"})
    spec = job_spec(tmp_path, container=container)
    argv, _ = run_arguments(spec, container, task_paths(spec), {})
    root = tmp_path / "node"
    assert [argv[index + 1] for index, arg in enumerate(argv) if arg == "-v"] == [f"{root}:{root}"]
    assert "-w" not in argv
    assert "--replace" not in argv  # a podman option
    assert argv.count("--network") == 0
    assert "--net" in argv


def test_validation_refuses_malformed_container_settings_and_configurations() -> None:
    with pytest.raises(MissingRequiredProperty):
        validate_container_settings({"containerRunOptions": "--rm"}, "containerSettings")
    with pytest.raises(InvalidPropertyValue):
        validate_container_settings(
            {"imageName": "app", "containerHostBatchBindMounts": [{"source": "Home"}]}, "containerSettings"
        )
    with pytest.raises(InvalidPropertyValue):
        validate_container_settings({"imageName": "app", "workingDirectory": "somewhere"}, "containerSettings")
    with pytest.raises(MissingRequiredProperty):
        validate_container_configuration({"containerImageNames": ["app"]})
    with pytest.raises(MissingRequiredProperty):
        validate_container_configuration({"type": "dockerCompatible", "containerRegistries": [{"username": "u"}]})
    with pytest.raises(InvalidPropertyValue):
        validate_container_configuration({"type": "kubernetes"})
    assert validate_container_configuration({"type": "CRICompatible", "containerImageNames": ["a"]})["type"] == (
        "CRICompatible"
    )


def test_passwords_are_left_out_of_rendered_settings() -> None:
    settings = {"imageName": "a", "registry": {"username": "u", "password": "p", "registryServer": "r"}}
    assert without_secrets(settings) == {"imageName": "a", "registry": {"username": "u", "registryServer": "r"}}
    assert settings["registry"]["password"] == "p"  # the stored settings keep it, for pulls


def test_a_runtime_that_does_not_exist_is_reported_with_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(RuntimeNotFoundError, match=r"apt-get install podman runc"):
        detect_runtime(str(tmp_path / "podman"), tmp_path)


def test_podman_gets_the_options_and_containers_conf_this_machine_kind_needs(tmp_path: Path) -> None:
    podman = runtime_for("/usr/bin/podman", tmp_path)
    assert podman.global_args[-4:] == ("--cgroup-manager", "cgroupfs", "--events-backend", "none")
    conf = Path(podman.env["CONTAINERS_CONF"])
    assert conf.parent == tmp_path
    assert "default_ulimits = []" in conf.read_text()


def test_the_command_line_takes_a_container_runtime() -> None:
    config, _ = parse_args(["--container-runtime", "docker"])
    assert config.container_runtime == "docker"
    assert parse_args([])[0].container_runtime is None


FAKE_CLIENT = """#!/bin/sh
echo "$@" >> "$RECORD"
case "$*" in
  *"image exists"*) exit 1 ;;
esac
while [ $# -gt 0 ]; do
  if [ "$1" = "--authfile" ]; then cat "$2" > "$RECORD.auth"; fi
  shift
done
if [ -n "$FAIL" ]; then echo "Trying to pull..." >&2; echo "Error: $FAIL" >&2; exit 125; fi
"""


def fake_podman(tmp_path: Path, fail: str = "") -> tuple[ContainerRuntime, Path]:
    client = tmp_path / "podman"
    client.write_text(FAKE_CLIENT)
    client.chmod(0o755)
    record = tmp_path / "calls"
    return ContainerRuntime("podman", str(client), "0", (), {"RECORD": str(record), "FAIL": fail}), record


def test_a_pull_passes_credentials_in_a_temporary_auth_file_never_on_the_command_line(tmp_path: Path) -> None:
    runtime, record = fake_podman(tmp_path)
    credential = RegistryCredential("myacr.azurecr.io", "robot", "s3cret")
    assert pull_image(runtime, "myacr.azurecr.io/app:1", [credential]) is None
    calls = record.read_text().splitlines()
    assert calls[0] == "image exists myacr.azurecr.io/app:1"
    assert calls[1].startswith("pull --authfile ")
    assert calls[1].endswith(" myacr.azurecr.io/app:1")
    assert "s3cret" not in record.read_text()
    auth = json.loads(Path(f"{record}.auth").read_text())
    assert base64.b64decode(auth["auths"]["myacr.azurecr.io"]["auth"]) == b"robot:s3cret"
    assert not Path(calls[1].split()[2]).exists()  # the auth file is gone after the pull
    assert pull_image(runtime, "myacr.azurecr.io/app:1", [credential]) is None
    assert len(record.read_text().splitlines()) == 2  # present now: neither looked up nor pulled again


def test_a_failed_pull_reports_the_clients_error_line(tmp_path: Path) -> None:
    runtime, record = fake_podman(tmp_path, fail="access denied")
    assert pull_image(runtime, "example.org/private:2", []) == "Error: access denied"
    assert record.read_text().splitlines()[-1] == "pull example.org/private:2"  # no credential for that registry


FAKE_DOCKER = """#!/bin/sh
echo "$@" >> "$RECORD"
case "$*" in
  *"image inspect"*) exit 1 ;;
esac
[ -n "$DOCKER_CONFIG" ] && cat "$DOCKER_CONFIG/config.json" > "$RECORD.docker-config"
[ -n "$REGISTRY_AUTH_FILE" ] && cat "$REGISTRY_AUTH_FILE" > "$RECORD.registry-auth"
exit 0
"""


def test_a_docker_pull_passes_credentials_through_the_environment_for_docker_and_podman_docker(tmp_path: Path) -> None:
    client = tmp_path / "docker"
    client.write_text(FAKE_DOCKER)
    client.chmod(0o755)
    record = tmp_path / "calls"
    runtime = ContainerRuntime("docker", str(client), "0", (), {"RECORD": str(record)})
    assert pull_image(runtime, "robot/app:1", [RegistryCredential("", "robot", "s3cret")]) is None
    assert record.read_text().splitlines() == ["image inspect --format x robot/app:1", "pull robot/app:1"]
    docker_config = json.loads(Path(f"{record}.docker-config").read_text())
    assert base64.b64decode(docker_config["auths"]["https://index.docker.io/v1/"]["auth"]) == b"robot:s3cret"
    assert json.loads(Path(f"{record}.registry-auth").read_text()) == docker_config  # podman-docker reads this one


def test_docker_gets_the_containers_conf_a_podman_behind_it_needs(tmp_path: Path) -> None:
    docker = runtime_for("/usr/bin/docker", tmp_path)
    assert docker.global_args == ()  # nothing a Docker client would refuse
    conf = Path(docker.env["CONTAINERS_CONF"]).read_text()
    assert "default_ulimits = []" in conf
    assert 'cgroup_manager = "cgroupfs"' in conf
