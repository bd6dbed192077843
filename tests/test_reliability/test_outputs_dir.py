"""The output directory: an unwritable one is refused before anything starts; a full one fails in one line that
names the path and the space needed, and leaves no partial file."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration]


@contextlib.contextmanager
def _tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A tmpfs of its own at ``where`` (root only: a real full or read-only filesystem, not a fake)."""
    where.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the unit test covers the message")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs; the unit test covers the message")


@pytest.mark.scenario(
    "Bad input",
    "`--output` on a read-only filesystem (a read-only tmpfs; as non-root: a directory without write permission)",
    "exit 2 at once with one line naming the directory and why; no service started, nothing created",
)
def test_an_unwritable_output_directory_is_refused_before_anything_starts(
    cli: Any, observe: Callable[[str], None]
) -> None:
    (cli.workdir / "in").mkdir()
    (cli.workdir / "in" / "words.txt").write_text("alpha beta alpha\n", "utf-8")
    with contextlib.ExitStack() as stack:
        if os.geteuid() == 0:
            target = stack.enter_context(_tmpfs(cli.workdir / "ro", "ro,size=64k"))
        else:
            target = cli.workdir / "ro"
            target.mkdir(mode=0o555)
        result = cli.run("run", "--input", "in", "--output", str(target / "out"), "--state-dir", "state")
    assert result.returncode == 2, result.stderr
    assert re.fullmatch(
        rf"error: cannot write outputs under '{re.escape(str(target))}' \((Read-only file system|Permission denied)\)"
        ": give a writable --output directory",
        result.error_line,
    ), result.error_line
    assert result.stderr.count("\n") == 1
    assert not (cli.workdir / "state").exists()  # no service started
    observe(f"exit 2 in {result.seconds:.1f}s (process start included): `{result.error_line}`; nothing started")


@pytest.mark.scenario(
    "Faults",
    "the output directory fills up during the downloads (a 4 KiB tmpfs: the first output fits, the second does not)",
    "one line naming the output path, the free space and the space needed (exit 5); no partial file left; the "
    "outputs that were written are complete",
)
def test_a_full_output_directory_fails_in_one_line_and_leaves_no_partial_file(
    api_cli: Any,
    azure_target: tuple[dict[str, str], Any],
    inputs: Callable[..., list[Path]],
    observe: Callable[[str], None],
) -> None:
    _root()
    env, _ = azure_target
    sources = inputs(api_cli.workdir / "in", 3)
    with _tmpfs(api_cli.workdir / "full", "size=4k") as full:
        result = api_cli.run("run", "--input", "in", "--output", str(full), "--approve", "yes", env=env)
        left = sorted(p.name for p in full.rglob("*") if p.is_file())
    assert result.returncode == 5, result.stdout[-2000:] + result.stderr[-3000:]
    pattern = (
        rf"error: cannot write output '{re.escape(str(full))}/batchpipe-\w+/doc\d_OUTPUT\.txt': No space left on "
        r"device; it needs [\d,]+ bytes, [\d,]+ are free in '.*': free space \(or give another --output\) and rerun "
        "the same command"
    )
    assert re.match(pattern, result.error_line), result.error_line
    assert "Traceback" not in result.stdout + result.stderr
    assert not [name for name in left if name.endswith(".partial")], left
    assert len(left) < len(sources)
    observe(f"exit 5: `{result.error_line}`")
    observe(f"files left in the full directory: {', '.join(left) or 'none'} (no .partial file)")
