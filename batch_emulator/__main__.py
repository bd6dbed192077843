"""``python -m batch_emulator``: run the local Azure Batch service in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from batch_emulator.clock import ServiceClock
from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME, EmulatorConfig
from batch_emulator.faults import FaultSpec, FaultSpecError
from batch_emulator.node.transfer import check_storage_endpoint
from batch_emulator.server import run_forever


def parse_args(argv: Sequence[str] | None = None) -> tuple[EmulatorConfig, Path | None]:
    """Parse the command line into a config and the ready-file path.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The config and the ``--ready-file`` path (or None).
    """
    parser = argparse.ArgumentParser(prog="python -m batch_emulator", description="Local Azure Batch service.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback unless --allow-remote)")
    parser.add_argument("--port", type=int, default=8001, help="TCP port; 0 picks a free one")
    parser.add_argument("--account", default=DEFAULT_ACCOUNT_NAME, help="Batch account name")
    parser.add_argument("--key", default=DEFAULT_ACCOUNT_KEY, help="base64 account key")
    parser.add_argument("--data-dir", type=Path, default=None, help="state directory (default: a temp dir)")
    parser.add_argument("--faults", default=None, help="fault-injection spec, e.g. throttle=0.1,seed=1")
    parser.add_argument("--cert", type=Path, default=None, help="TLS certificate (PEM)")
    parser.add_argument("--key-file", type=Path, default=None, help="TLS private key (PEM)")
    parser.add_argument(
        "--allow-bearer", action="store_true", help="accept Bearer tokens for Batch, unsigned (development)"
    )
    parser.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    parser.add_argument(
        "--storage-endpoint",
        default=None,
        help="reach <account>.blob.core.windows.net at this endpoint, path-style (e.g. http://127.0.0.1:10000)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="run service-defined intervals (autoscale evaluation, schedules) this many times faster",
    )
    parser.add_argument(
        "--container-runtime",
        default=None,
        help="container runtime client for container pools: podman, docker or a path (default: podman, then docker)",
    )
    parser.add_argument("--ready-file", type=Path, default=None, help="write the URL here once listening")
    args = parser.parse_args(argv)
    if bool(args.cert) != bool(args.key_file):
        parser.error("--cert and --key-file go together")
    try:
        ServiceClock(args.time_scale)
    except ValueError as error:
        parser.error(f"--time-scale: {error}")
    try:
        FaultSpec.parse(args.faults)
    except FaultSpecError as error:
        parser.error(f"--faults: {error}")
    try:
        check_storage_endpoint(args.storage_endpoint)
    except ValueError as error:
        parser.error(f"--storage-endpoint: {error}")
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        account_name=args.account,
        account_key=args.key,
        data_dir=args.data_dir,
        faults=args.faults,
        certfile=args.cert,
        keyfile=args.key_file,
        allow_bearer=args.allow_bearer,
        allow_remote=args.allow_remote,
        storage_endpoint=args.storage_endpoint,
        time_scale=args.time_scale,
        container_runtime=args.container_runtime,
    )
    return config, args.ready_file


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service; returns the process exit code."""
    config, ready_file = parse_args(argv)
    try:
        run_forever(config, ready_file=ready_file)
    except (ValueError, OSError) as error:
        print(f"batch_emulator: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
