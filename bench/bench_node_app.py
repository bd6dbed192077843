"""Benchmark the node application's top-N counting against the tutorial's approach and a coreutils pipeline.

Not a test: it measures. It generates N MiB of text deterministically, then runs interleaved repetitions of

* ``node_app``: the built zipapp (``python artifact.pyz --no-upload``), streaming with the tutorial's rules;
* ``tutorial``: the tutorial's approach (read all + ``str.split`` + ``strip(string.punctuation)`` + ``Counter``),
  written here as a baseline script from the rules in ``shared/notes/seed-task-rules.md``;
* ``coreutils``: ``tr -cs '[:alnum:]' '\\n' | sort | uniq -c | sort -rn | head`` with ``LC_ALL=C`` (its fastest
  setting) and, at the smaller size, with ``LC_ALL=C.UTF-8``. It is **not** the same counting rules (it splits on
  every non-alphanumeric byte); it is the usual shell answer to "top N words", shown for speed only.

It reports the median and the min-max of wall time, CPU time and peak RSS (``os.wait4`` on each child), the
speed-ups of node_app over the tutorial and over coreutils at the same size, and node_app's RSS at two sizes.
node_app's output is checked to be identical to the tutorial baseline's on every dataset both ran on.

    .venv/bin/python bench/bench_node_app.py --quick --json /tmp/bench.json   # 64 MiB, ~1.5 minutes
    .venv/bin/python bench/bench_node_app.py --json /tmp/bench.json           # 1 GiB, ~5 minutes
    .venv/bin/python -m bench --only node_app                                 # as part of the suite

The tutorial's approach needs about 20 bytes of RAM per byte of input; it is skipped at a size whose estimated peak
RSS exceeds half of MemAvailable (the report says so).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Measurement, available_memory_bytes, markdown_table, run_measured, summarize
from node_app.build import build_package
from node_app.counting import count_words

MIB = 1024 * 1024
BATCH_ENV = {
    "AZ_BATCH_NODE_ID": "bench-node",
    "AZ_BATCH_TASK_ID": "bench-task",
    "AZ_BATCH_JOB_ID": "bench-job",
    "AZ_BATCH_POOL_ID": "bench-pool",
}

# The tutorial's counting, from the rules (not a copy of its script): read everything as text, split on
# whitespace, strip ASCII punctuation from both ends, count; print the top N as the tutorial's output lines.
TUTORIAL_BASELINE = """\
import collections
import string
import sys

path, number = sys.argv[1], int(sys.argv[2])
with open(path, encoding="utf-8") as file:
    words = [word.strip(string.punctuation) for word in file.read().split()]
for word, count in collections.Counter(words).most_common(number):
    print(word + ":\\t" + str(count))
"""

_COMMON_TEXT = (
    "the of and to a in is it you that he was for on are with as I his they be at one have this from or had by "
    "not but some what there we can out other were all your when up use word how said an each she which do their "
    "time if will way about many then them would write like so these her long make thing see him two has look "
    "more day could go come did my sound no most number who over know water than call first people may down side "
    "been now find any new work part take get place made live where after back little only round man year came "
    "show every good me give our under name very through just form much great think say help low line before "
    "turn cause same mean differ move right boy old too does tell sentence set three want air well also play small "
    "end put home read hand port large spell add even land here must big high such follow act why ask men change "
    "went light kind off need house picture try us again animal point mother world near build self earth father "
    "Azure Batch batch pool Pool node job Job task Task tasks storage Storage blob container output input compute "
    "you're it's don't high-scale résumé café naïve über déjà-vu Ünïcode "
    "you\u2019re it\u2019s tasks—processing “quoted” «citation» 数据 処理 данные"
)
_SYLLABLES = "ka lo mi ne ru sa ti po ve zu an el is or um ba de fi go hu"
_DECORATIONS = ["", "", "", "", "", "", "", ",", ",", ".", ".", ";", ":", "!", "?", ")", '"', "'", "...", "—"]


def generate_blocks(seed: int, rare_words: int = 60_000, count: int = 8, words_per_block: int = 180_000) -> list[bytes]:
    """Make ``count`` distinct blocks of about 1 MiB of English-like text (Zipf word frequencies, punctuation).

    The vocabulary is ~300 common words plus up to ``rare_words`` made-up ones; with punctuation such as a
    trailing em dash the counter ends up with about 55 000 distinct words at the default.
    """
    rng = random.Random(seed)
    rare = sorted({"".join(rng.choices(_SYLLABLES.split(), k=rng.randint(2, 4))) for _ in range(rare_words)})
    rng.shuffle(rare)
    vocabulary = _COMMON_TEXT.split() + rare
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    blocks = []
    for _ in range(count):
        words = rng.choices(vocabulary, weights, k=words_per_block)
        decorations = rng.choices(_DECORATIONS, k=words_per_block)
        out = io.StringIO()
        for index, (word, decoration) in enumerate(zip(words, decorations, strict=True)):
            token = word.capitalize() if decoration in (".", "!", "?") and index % 3 == 0 else word
            token = f"({token}" if decoration == ")" else f"{token}{decoration}"
            out.write(token)
            out.write("\n" if index % 13 == 12 else " ")
        out.write("\n")
        blocks.append(out.getvalue().encode("utf-8"))
    return blocks


def write_dataset(path: Path, size_mib: int, blocks: Sequence[bytes], seed: int, *, nbsp: bool = False) -> int:
    """Write about ``size_mib`` MiB of blocks in a seeded order; with ``nbsp`` every 97th space is U+00A0.

    Every block comes once before any repeats, so the vocabulary is complete after ``len(blocks)`` MiB and RSS
    measured at two larger sizes compares buffers, not vocabularies.
    """
    rng = random.Random(seed)
    order = list(blocks)
    rng.shuffle(order)
    written = 0
    with path.open("wb") as file:
        while written < size_mib * MIB:
            block = order.pop(0) if order else rng.choice(blocks)
            if nbsp:
                pieces = block.split(b" ")
                block = b"".join(piece + (b"\xc2\xa0" if i % 97 == 96 else b" ") for i, piece in enumerate(pieces))
                block = block[: -len(b" ")] if block.endswith(b" ") else block
            file.write(block)
            written += len(block)
    return written


@dataclass
class Case:
    """One program on one dataset, measured several times."""

    name: str
    dataset: str
    size_mib: float
    argv: list[str]
    env: dict[str, str]
    runs: list[Measurement] = field(default_factory=list)
    skipped: str = ""

    @property
    def key(self) -> str:
        return f"{self.name}@{self.dataset}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB instead of 1024 MiB, 3 repetitions")
    parser.add_argument("--size-mib", type=int, help="size of the main dataset (default 1024, --quick 64)")
    parser.add_argument("--reps", type=int, help="repetitions per case (default 2, --quick 3)")
    parser.add_argument("--numwords", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--workdir", type=Path, help="keep data and outputs here (default: a temporary directory)")
    parser.add_argument("--chunk-sweep", action="store_true", help="also time count_words in-process per chunk size")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--lean", action="store_true", help="only the cases the suite's goals need (no NBSP text, no UTF-8 coreutils)"
    )
    parser.add_argument(
        "--rare-words", type=int, default=60_000, help="made-up words drawn for the vocabulary's tail (default 60000)"
    )
    args = parser.parse_args(argv)
    size = args.size_mib or (64 if args.quick else 1024)
    small = min(max(1, size // 8), 64)
    reps = args.reps or (3 if args.quick else 2)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-node-app-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, workdir, size, small, reps)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(args: argparse.Namespace, workdir: Path, size: int, small: int, reps: int) -> int:
    started = time.perf_counter()
    blocks = generate_blocks(args.seed, args.rare_words)
    datasets = {
        "main": workdir / f"text_{size}MiB.txt",
        "small": workdir / f"text_{small}MiB.txt",
        "small-nbsp": workdir / f"text_{small}MiB_nbsp.txt",
    }
    sizes = {
        "main": write_dataset(datasets["main"], size, blocks, args.seed),
        "small": write_dataset(datasets["small"], small, blocks, args.seed),
    }
    if not args.lean:
        sizes["small-nbsp"] = write_dataset(datasets["small-nbsp"], small, blocks, args.seed, nbsp=True)
    print(
        f"generated {', '.join(f'{k} {v / MIB:.0f} MiB' for k, v in sizes.items())} in {workdir} "
        f"({time.perf_counter() - started:.1f} s)",
        file=sys.stderr,
    )
    artifact = build_package(workdir / "dist")
    baseline = workdir / "tutorial_baseline.py"
    baseline.write_text(TUTORIAL_BASELINE, encoding="utf-8")

    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    python = sys.executable
    n = str(args.numwords)

    def ours(dataset: str) -> Case:
        path = datasets[dataset]
        return Case(
            "node_app",
            dataset,
            sizes[dataset] / MIB,
            [python, str(artifact), "--filepath", str(path), "--numwords", n, "--no-upload"],
            {**base_env, **BATCH_ENV},
        )

    def tutorial(dataset: str) -> Case:
        return Case(
            "tutorial",
            dataset,
            sizes[dataset] / MIB,
            [python, str(baseline), str(datasets[dataset]), n],
            dict(base_env),
        )

    def coreutils(dataset: str, locale: str) -> Case:
        pipeline = (
            f"tr -cs '[:alnum:]' '\\n' < {shlex.quote(str(datasets[dataset]))} "
            f"| sort | uniq -c | sort -rn | head -n {n}"
        )
        return Case(
            f"coreutils {locale}", dataset, sizes[dataset] / MIB, ["sh", "-c", pipeline], {**base_env, "LC_ALL": locale}
        )

    if args.lean:
        # What the suite's goals need: node_app vs the tutorial (small), vs coreutils (main), RSS at both sizes.
        cases = [ours("small"), tutorial("small"), ours("main"), tutorial("main"), coreutils("main", "C")]
    else:
        cases = [
            ours("small"),
            tutorial("small"),
            coreutils("small", "C"),
            coreutils("small", "C.UTF-8"),
            ours("small-nbsp"),
            tutorial("small-nbsp"),
            ours("main"),
            tutorial("main"),
            coreutils("main", "C"),
        ]
        if args.quick:
            cases.append(coreutils("main", "C.UTF-8"))

    # The tutorial holds the whole text and a list of all tokens: estimate its peak from the small run.
    by_key = {case.key: case for case in cases}
    _measure(by_key["tutorial@small"], workdir, 0)
    per_byte = by_key["tutorial@small"].runs[0].max_rss_kib * 1024 / sizes["small"]
    estimate = per_byte * sizes["main"]
    available = available_memory_bytes()
    if available is not None and estimate > available / 2:
        by_key["tutorial@main"].skipped = (
            f"skipped: estimated peak RSS {estimate / 2**30:.1f} GiB "
            f"> half of MemAvailable ({available / 2**30:.1f} GiB)"
        )

    active = [case for case in cases if not case.skipped]
    for rep in range(reps):
        shift = rep % len(active)
        for case in active[shift:] + active[:shift]:  # interleaved, a different order each repetition
            if case.key == "tutorial@small" and rep == 0:
                continue  # measured above
            _measure(case, workdir, rep)
        print(f"repetition {rep + 1}/{reps} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    verification = _verify(cases, workdir, args.numwords)
    sweep = _chunk_sweep(datasets["small"]) if args.chunk_sweep else {}
    report = _report(cases, verification, sweep, size, small, reps)
    print(report)
    if args.json:
        results = {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "size_mib": size,
            "small_mib": small,
            "reps": reps,
            "numwords": args.numwords,
            "rare_words": args.rare_words,
            "artifact": artifact.name,
            "verification": verification,
            "chunk_sweep_s": sweep,
            "cases": [
                {
                    "name": case.name,
                    "dataset": case.dataset,
                    "size_mib": round(case.size_mib, 1),
                    "skipped": case.skipped,
                    "runs": [asdict(run) for run in case.runs],
                    "wall_s": asdict(summarize([r.wall_s for r in case.runs])) if case.runs else None,
                    "cpu_s": asdict(summarize([r.cpu_s for r in case.runs])) if case.runs else None,
                    "max_rss_mib": statistics.median(r.max_rss_kib / 1024 for r in case.runs) if case.runs else None,
                }
                for case in cases
            ],
            "total_s": round(time.perf_counter() - started, 1),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    failed = [case.key for case in cases for run in case.runs if run.returncode != 0]
    if failed or not all(verification.values()):
        print(f"FAILED runs: {failed}; verification: {verification}", file=sys.stderr)
        return 1
    return 0


def _run_dir(workdir: Path, case: Case, rep: int) -> Path:
    path = workdir / "runs" / case.key.replace(" ", "_").replace("@", "-") / str(rep)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _measure(case: Case, workdir: Path, rep: int) -> None:
    run_dir = _run_dir(workdir, case, rep)
    case.runs.append(run_measured(case.argv, cwd=run_dir, env=case.env, stdout_path=run_dir / "stdout.txt"))


def _verify(cases: Sequence[Case], workdir: Path, numwords: int) -> dict[str, bool]:
    """node_app's top-N lines must equal the tutorial baseline's on every dataset both ran on."""
    results = {}
    for case in cases:
        if case.name != "node_app" or not case.runs:
            continue
        tutorial = next((c for c in cases if c.name == "tutorial" and c.dataset == case.dataset and c.runs), None)
        if tutorial is None:
            continue
        ours_dir = _run_dir(workdir, case, 0)
        output = next(ours_dir.glob("*_OUTPUT.txt")).read_text(encoding="utf-8").splitlines()
        expected = (_run_dir(workdir, tutorial, 0) / "stdout.txt").read_text(encoding="utf-8").splitlines()
        results[case.dataset] = output[2 : 2 + numwords] == expected and len(expected) == numwords
    return results


def _chunk_sweep(path: Path) -> dict[str, float]:
    """Median in-process time of count_words per chunk size (3 runs each, interleaved)."""
    sizes = [16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024]
    times: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(3):
        for chunk_size in sizes:
            with path.open("rb") as stream:
                start = time.perf_counter()
                count_words(stream, chunk_size=chunk_size)
                times[chunk_size].append(time.perf_counter() - start)
    return {f"{size // 1024} KiB": round(statistics.median(values), 3) for size, values in times.items()}


def _report(
    cases: Sequence[Case], verification: dict[str, bool], sweep: dict[str, float], size: int, small: int, reps: int
) -> str:
    def medians(name: str, dataset: str) -> tuple[float, float] | None:
        """Median wall and CPU time of a case."""
        case = next((c for c in cases if c.name == name and c.dataset == dataset and c.runs), None)
        if case is None:
            return None
        return summarize([r.wall_s for r in case.runs]).median, summarize([r.cpu_s for r in case.runs]).median

    rows = []
    for case in cases:
        if not case.runs:
            rows.append([case.name, case.dataset, f"{case.size_mib:.0f}", case.skipped, "", "", "", ""])
            continue
        wall = summarize([r.wall_s for r in case.runs])
        cpu = summarize([r.cpu_s for r in case.runs])
        rss = summarize([r.max_rss_kib / 1024 for r in case.runs])
        ratios = []
        if case.name == "node_app":
            # node_app on text with NBSP is compared with the tutorial on that same text.
            for other in ("tutorial", "coreutils C"):
                reference = medians(other, case.dataset)
                if reference:
                    ratios.append(
                        f"{reference[0] / wall.median:.2f}x wall, {reference[1] / cpu.median:.2f}x CPU vs {other}"
                    )
        rows.append(
            [
                case.name,
                case.dataset,
                f"{case.size_mib:.0f}",
                f"{wall.median:.2f} ({wall.low:.2f}-{wall.high:.2f})",
                f"{cpu.median:.2f}",
                f"{rss.median:.0f} ({rss.low:.0f}-{rss.high:.0f})",
                ", ".join(ratios),
                str(len(case.runs)),
            ]
        )
    table = markdown_table(
        [
            "program",
            "dataset",
            "MiB",
            "wall s median (min-max)",
            "CPU s",
            "peak RSS MiB median (min-max)",
            "node_app speed-up",
            "runs",
        ],
        rows,
    )
    ours_small = next(c for c in cases if c.name == "node_app" and c.dataset == "small")
    ours_main = next(c for c in cases if c.name == "node_app" and c.dataset == "main")
    rss_small = statistics.median(r.max_rss_kib / 1024 for r in ours_small.runs)
    rss_main = statistics.median(r.max_rss_kib / 1024 for r in ours_main.runs)
    notes = [
        "",
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {reps} interleaved repetitions per case; "
        f"datasets main = {size} MiB, small = {small} MiB, small-nbsp = small with every 97th space a U+00A0 "
        "(forces node_app's exact str pass).",
        f"node_app peak RSS: {rss_small:.0f} MiB at {ours_small.size_mib:.0f} MiB input, "
        f"{rss_main:.0f} MiB at {ours_main.size_mib:.0f} MiB input (flat: fixed 64 KiB blocks + the vocabulary).",
        "Output check (node_app top-N lines == tutorial baseline): "
        + ", ".join(f"{k}: {'identical' if v else 'DIFFERENT'}" for k, v in verification.items()),
        "coreutils counts differently (splits on every non-alphanumeric byte, no punctuation rules); its CPU time "
        "is the sum of its processes, its RSS that of the largest (sort).",
        f"Load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
        "(wall times on a shared machine vary; CPU times vary less).",
    ]
    if sweep:
        notes.append(
            "count_words in-process on small, median of 3, per chunk size: "
            + ", ".join(f"{k}: {v:.2f} s" for k, v in sweep.items())
        )
    return table + "\n" + "\n".join(notes)


if __name__ == "__main__":
    sys.exit(main())
