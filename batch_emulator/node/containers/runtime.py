"""Find the container runtime of this machine (podman or docker) and run its client commands.

podman is preferred; docker counts only when its engine answers (``docker version`` names a server),
because a docker client without an engine is common. On Debian, podman with crun fails on the hybrid
cgroup layout and on ``setrlimit``, so the service runs it with ``--runtime runc --cgroup-manager
cgroupfs`` and a ``containers.conf`` of its own (``default_ulimits = []``, the same engine choices)
named by ``CONTAINERS_CONF``. A ``docker`` client gets that variable too: Docker ignores it, and a
``docker`` that is podman (Debian's ``podman-docker``) needs it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_log = logging.getLogger("batch_emulator.containers")

#: The runtimes looked for, in order of preference.
RUNTIME_NAMES = ("podman", "docker")
INSTALL_HINT = "install one with `apt-get install podman runc` (or start a Docker engine)"
PROBE_TIMEOUT_SECONDS = 60.0
CLIENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: What the service's own containers.conf holds: no default ulimits (setrlimit fails in nested setups), and
#: the engine choices podman is also given as options (for a podman reached through a ``docker`` command).
CONTAINERS_CONF_TEXT = (
    "# written by the local Batch service\n[containers]\ndefault_ulimits = []\n"
    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n'
)


@dataclass(frozen=True)
class ContainerRuntime:
    """A working container runtime client and the options the service always gives it."""

    name: str  # "podman" or "docker"
    binary: str  # absolute path of the client
    version: str
    global_args: tuple[str, ...] = ()  # options before the subcommand
    env: Mapping[str, str] = field(default_factory=dict)  # environment of every client call

    def argv(self, *args: str) -> list[str]:
        """The argument vector of one client call.

        Args:
            *args: The subcommand and its arguments.

        Returns:
            ``[binary, *global_args, *args]``.
        """
        return [self.binary, *self.global_args, *args]

    def client_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a client call: a clean PATH, HOME, the runtime's own variables, then ``extra``."""
        env = {"PATH": CLIENT_PATH, "HOME": os.environ.get("HOME", "/root")}
        env.update(self.env)
        env.update(extra or {})
        return env

    def call(
        self, *args: str, timeout: float | None = None, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a client command to completion and capture its output.

        Args:
            *args: The subcommand and its arguments.
            timeout: Seconds before the call is abandoned.
            extra_env: Variables for this call only (e.g. where registry credentials are).

        Returns:
            The finished process (never raises on a non-zero exit).

        Raises:
            OSError: The client cannot be started.
            subprocess.TimeoutExpired: It ran longer than ``timeout``.
        """
        return subprocess.run(
            self.argv(*args),
            env=self.client_env(extra_env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def describe(self) -> str:
        """One line for the log: name, version, client path and options."""
        options = " ".join(self.global_args)
        return f"{self.name} {self.version} ({self.binary}{' ' + options if options else ''})"


class RuntimeNotFoundError(Exception):
    """No working container runtime: the message says what was tried and what to install."""


def _kind(binary: str) -> str:
    """``podman`` or ``docker`` from a client's file name (anything else is treated as docker-like)."""
    return "podman" if "podman" in Path(binary).name else "docker"


def _locate_client(name: str) -> str | None:
    """The absolute path of a client given by name (searched on PATH) or by path (must be executable)."""
    if "/" in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    return shutil.which(name, path=CLIENT_PATH)


def write_containers_conf(directory: Path) -> Path:
    """Write the service's ``containers.conf`` (idempotent).

    Args:
        directory: Where to keep it (the service's data directory).

    Returns:
        Its path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "containers.conf"
    text = CONTAINERS_CONF_TEXT + ('runtime = "runc"\n' if shutil.which("runc", path=CLIENT_PATH) else "")
    if not path.exists() or path.read_text("utf-8") != text:
        path.write_text(text, "utf-8")
    return path


def runtime_for(binary: str, conf_dir: Path) -> ContainerRuntime:
    """The runtime object of a client binary, with the options this machine kind needs (not probed).

    Args:
        binary: Path of the podman or docker client.
        conf_dir: Where podman's ``containers.conf`` is written.

    Returns:
        The runtime (version unknown until probed).
    """
    env = {"CONTAINERS_CONF": str(write_containers_conf(conf_dir))}
    if _kind(binary) == "docker":
        return ContainerRuntime("docker", binary, "unknown", (), env)
    options: list[str] = []
    if shutil.which("runc", path=CLIENT_PATH):
        options += ["--runtime", "runc"]
    options += ["--cgroup-manager", "cgroupfs", "--events-backend", "none"]  # no event log (faster)
    return ContainerRuntime("podman", binary, "unknown", tuple(options), env)


def probe(runtime: ContainerRuntime) -> ContainerRuntime:
    """Check that a runtime works (podman ``info``, docker ``version`` with a server), and learn its version.

    docker asks ``version`` for the server's version: it fails without an engine, and a podman behind a
    ``docker`` command answers it too (``info`` has no ``ServerVersion`` there).

    Args:
        runtime: From :func:`runtime_for`.

    Returns:
        The runtime with its version.

    Raises:
        RuntimeNotFoundError: The client is missing or its ``info`` fails (e.g. docker without an engine).
    """
    command = ("info", "--format", "{{.Version.Version}}")
    if runtime.name == "docker":
        command = ("version", "--format", "{{.Server.Version}}")
    try:
        info = runtime.call(*command, timeout=PROBE_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeNotFoundError(f"{runtime.binary}: {error}") from error
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or [f"exit code {info.returncode}"])[-1]
        raise RuntimeNotFoundError(f"{runtime.binary} {command[0]} failed: {reason}")
    version = info.stdout.strip() or "unknown"
    return ContainerRuntime(runtime.name, runtime.binary, version, runtime.global_args, runtime.env)


def detect_runtime(override: str | None, conf_dir: Path) -> ContainerRuntime:
    """Find the first working runtime: ``override`` alone if given, else podman, then docker.

    Args:
        override: A client name or path to use instead of searching (e.g. ``docker``).
        conf_dir: Where podman's ``containers.conf`` is written.

    Returns:
        The working runtime.

    Raises:
        RuntimeNotFoundError: None works; the message lists why each one failed and what to install.
    """
    reasons: list[str] = []
    for name in [override] if override else list(RUNTIME_NAMES):
        binary = _locate_client(name)
        if binary is None:
            reasons.append(f"{name}: not installed")
            continue
        try:
            return probe(runtime_for(binary, conf_dir))
        except RuntimeNotFoundError as error:
            reasons.append(str(error))
    tried = "; ".join(reasons)
    raise RuntimeNotFoundError(f"No container runtime works on this machine ({tried}); {INSTALL_HINT}.")


class RuntimeLocator:
    """Finds the runtime once, in the background from service start, and answers who needs it.

    Probing takes seconds (``podman info``), so the service starts it early and pool creation waits
    for the answer only when a pool asks for containers. Results are shared by every locator in the
    process with the same override (tests start many services).
    """

    _cache: dict[str | None, ContainerRuntime | RuntimeNotFoundError] = {}
    _cache_lock = threading.Lock()

    def __init__(self, override: str | None, conf_dir: Path) -> None:
        """Create a locator.

        Args:
            override: ``EmulatorConfig.container_runtime`` (None: search for podman, then docker).
            conf_dir: Where podman's ``containers.conf`` is written.
        """
        self.override = override
        self.conf_dir = conf_dir
        self._done = threading.Event()
        self._result: ContainerRuntime | RuntimeNotFoundError | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin looking in a background thread, and log what was found."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._locate, name="batch-container-runtime", daemon=True)
            self._thread.start()

    def _locate(self) -> None:
        try:
            with RuntimeLocator._cache_lock:
                cached = RuntimeLocator._cache.get(self.override)
                if cached is None:
                    try:
                        cached = detect_runtime(self.override, self.conf_dir)
                    except RuntimeNotFoundError as error:
                        cached = error
                    RuntimeLocator._cache[self.override] = cached
            if isinstance(cached, ContainerRuntime) and "CONTAINERS_CONF" in cached.env:
                # The cached runtime names another service's containers.conf: write this one's own.
                cached = ContainerRuntime(
                    cached.name,
                    cached.binary,
                    cached.version,
                    cached.global_args,
                    {"CONTAINERS_CONF": str(write_containers_conf(self.conf_dir))},
                )
            self._result = cached
            if isinstance(cached, ContainerRuntime):
                _log.info("container runtime: %s", cached.describe())
            else:
                _log.info("no container runtime: container pools will be refused. %s", cached)
        finally:
            self._done.set()

    def get(self) -> ContainerRuntime:
        """The runtime, waiting for the search if it is still running.

        Raises:
            RuntimeNotFoundError: None works on this machine.
        """
        self.start()
        self._done.wait()
        result = self._result
        if isinstance(result, ContainerRuntime):
            return result
        raise result or RuntimeNotFoundError(f"The container runtime search failed; {INSTALL_HINT}.")
