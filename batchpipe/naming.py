"""Pure functions: which files are the inputs, and the deterministic ids and names derived from them."""

from __future__ import annotations

import codecs
import glob
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from batchpipe.errors import InputError

MAX_BATCH_ID = 64
_NOT_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class InputFile:
    """One input: where it is locally, its blob name, and the hash that identifies its content."""

    path: Path
    blob_name: str
    sha256: str
    size: int
    #: For an input already in storage (``blob://container/prefix``): its container and blob; not uploaded.
    container: str | None = None
    source_blob: str | None = None

    @property
    def source(self) -> str:
        """Where the input comes from: a local path, or ``blob://container/blob``."""
        return f"blob://{self.container}/{self.source_blob}" if self.container else str(self.path)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _text_sha256(path: Path) -> str:
    """SHA-256 of a text file, checking on the way that it is UTF-8 without NUL bytes (the node app needs text).

    Raises:
        InputError: the file is binary or not UTF-8.
    """
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            if b"\0" in block:
                raise InputError(f"input file {str(path)!r} is binary (NUL byte near offset {offset}): give text files")
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                raise InputError(
                    f"input file {str(path)!r} is not UTF-8 text (bad byte at offset {offset + error.start}): "
                    "convert it, e.g. iconv -f latin1 -t utf-8"
                ) from None
            offset += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise InputError(
            f"input file {str(path)!r} is not UTF-8 text (it ends inside a character at offset {offset}): "
            "convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    return digest.hexdigest()


def resolve_inputs(patterns: Sequence[str], base: Path | None = None) -> list[InputFile]:
    """Expand files, directories (their regular files, recursively) and globs into validated inputs.

    Args:
        patterns: files, directories or glob patterns.
        base: directory that relative patterns are resolved against (default: the working directory).

    Returns:
        The inputs sorted by blob name.

    Raises:
        InputError: nothing matched, a file is missing, unreadable or empty, or two files share a name.
    """
    base = base or Path.cwd()
    if not patterns:
        raise InputError("no input files given: pass files, directories or globs with --input")
    found: list[Path] = []
    for pattern in patterns:
        candidate = Path(pattern).expanduser()
        candidate = candidate if candidate.is_absolute() else base / candidate
        if glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(str(candidate), recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                raise InputError(f"no files match {pattern!r}")
            found.extend(files)
        elif candidate.is_dir():
            files = sorted(p for p in candidate.rglob("*") if p.is_file() and not p.name.startswith("."))
            if not files:
                raise InputError(f"directory {pattern!r} contains no files")
            found.extend(files)
        elif candidate.is_file():
            found.append(candidate)
        elif candidate.exists():
            raise InputError(f"{pattern!r} is not a regular file")
        else:
            raise InputError(f"input file {pattern!r} does not exist")
    return _validate(dict.fromkeys(p.resolve() for p in found))


def _validate(paths: Iterable[Path]) -> list[InputFile]:
    by_name: dict[str, Path] = {}
    inputs = []
    for path in paths:
        previous = by_name.get(path.name)
        if previous is not None:
            raise InputError(
                f"two inputs are named {path.name!r} ({previous} and {path}): outputs would collide, rename one"
            )
        by_name[path.name] = path
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"input file {str(path)!r} is empty: remove it or give it content")
        inputs.append(InputFile(path=path, blob_name=path.name, sha256=_text_sha256(path), size=size))
    return sorted(inputs, key=lambda item: item.blob_name)


def output_blob_name(input_blob_name: str) -> str:
    """The tutorial's output name: ``<stem>_OUTPUT<ext>`` (``taskdata1.txt`` → ``taskdata1_OUTPUT.txt``)."""
    name = PurePosixPath(input_blob_name)
    return f"{name.stem}_OUTPUT{name.suffix}"


def _batch_id(prefix: str, readable: str, unique: str) -> str:
    readable = _NOT_ID_CHARS.sub("-", readable).strip("-_") or "x"
    room = MAX_BATCH_ID - len(prefix) - len(unique) - 2
    return f"{prefix}-{readable[:room].rstrip('-_')}-{unique}"


def task_id_for(input_file: InputFile) -> str:
    """A valid, deterministic Batch task id for an input (readable name + a short hash of the blob name)."""
    unique = hashlib.sha256(input_file.blob_name.encode()).hexdigest()[:8]
    return _batch_id("topn", PurePosixPath(input_file.blob_name).stem, unique)


def job_id_for(inputs: Sequence[InputFile], num_words: int, pool_id: str) -> str:
    """A deterministic job id per run input: the same inputs, word count and pool find the same job again."""
    digest = hashlib.sha256()
    for item in sorted(inputs, key=lambda i: i.blob_name):
        digest.update(f"{item.blob_name}\0{item.sha256}\n".encode())
    digest.update(f"numwords={num_words}\npool={pool_id}".encode())
    return f"batchpipe-{digest.hexdigest()[:16]}"


def wire_text(value: object) -> str:
    """The wire string of an SDK enum or plain value, lower-cased (``OSType.LINUX`` → ``linux``); '' for None."""
    if value is None:
        return ""
    return str(getattr(value, "value", value)).lower()
