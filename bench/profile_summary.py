"""Summarise a py-spy ``--format raw`` profile: seconds per process, then the heaviest frames of each (inclusive).

The profiles quoted in docs/benchmarks.md were taken and summarised like this (py-spy is not a project dependency:
``.venv/bin/pip install py-spy``):

    py-spy record -r 100 --subprocesses -f raw -o run.raw -- .venv/bin/batchpipe run --approve yes
    .venv/bin/python -m bench.profile_summary run.raw --rate 100 --top 25

Frames are ``function (file)``; a frame counts once per sample however deep it recurs, so an import's time includes
everything it imported.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

_LOCATION = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def frame_key(frame: str) -> str:
    """``function (file name)`` for a py-spy frame ``function (path/file.py:line)``."""
    match = _LOCATION.match(frame)
    if not match:
        return frame
    return f"{match['function']} ({Path(match['file']).name})"


def summarise(lines: Sequence[str]) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Samples per process, and per process the inclusive samples of each frame.

    Args:
        lines: the raw profile, one ``frame;frame;... count`` per line (``process N:"command"`` frames first).

    Returns:
        (samples per process, process -> frame -> samples).
    """
    per_process: Counter[str] = Counter()
    frames: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        stack_frames = stack.split(";")
        # With --subprocesses a child's stack starts with its parents' "process N:" frames: the last one is its own.
        own = max(i for i, frame in enumerate(stack_frames) if frame.startswith("process ") or i == 0)
        process = re.sub(r"^process \d+:", "", stack_frames[own]).strip('"')[:100]
        rest = stack_frames[own + 1 :]
        per_process[process] += count
        for key in {frame_key(frame) for frame in rest}:
            frames[process][key] += count
    return per_process, frames


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``profile_summary.py RAW [--rate HZ] [--top N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("raw", type=Path)
    parser.add_argument("--rate", type=float, default=100.0, help="the sampling rate py-spy used (-r)")
    parser.add_argument("--top", type=int, default=20, help="frames shown per process")
    args = parser.parse_args(argv)
    per_process, frames = summarise(args.raw.read_text("utf-8", "replace").splitlines())
    for process, samples in per_process.most_common():
        print(f"{samples / args.rate:7.2f} s  {process}")
        for frame, count in frames[process].most_common(args.top):
            print(f"    {count / args.rate:7.2f} s  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
