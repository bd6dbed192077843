"""Pure pieces of the general flow: inputs and their keys, the command template, task ids and the output layout.

Nothing here talks to a service. The flow (``flows/batch_map.py``) and the steps (``tasks/``) use these functions;
``docs/workloads.md`` documents the placeholders and the layout they produce.
"""

from __future__ import annotations

import glob
import hashlib
import re
import shlex
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from batchpipe.errors import ConfigurationError, InputError
from batchpipe.naming import MAX_BATCH_ID, InputFile, file_sha256

#: The directory (relative to the task's working directory) the command writes its outputs into.
OUTPUT_DIR = "outputs"
#: Written by the task wrapper after a successful command: one ``<size>\t<path>`` line per output file.
OUTPUT_LIST = ".batchpipe-outputs.tsv"
#: Exit code of the task wrapper when the command succeeded but wrote no output matching the patterns.
NO_OUTPUT_EXIT_CODE = 97

#: Placeholders every command template and output pattern may use, with what they stand for.
PLACEHOLDERS: dict[str, str] = {
    "input": "the input file on the node, relative to the task's working directory (its key, e.g. `a/b.txt`)",
    "input_name": "the input's file name (`b.txt`)",
    "input_stem": "the input's file name without its last suffix (`b`)",
    "input_ext": "the input's last suffix with its dot (`.txt`, or empty)",
    "input_key": "the input's path relative to the input root it was found under (`a/b.txt`)",
    "output_dir": f"the directory to write outputs into (`{OUTPUT_DIR}`, relative to the working directory)",
    "task_index": "the input's position in the sorted inputs, from 0",
    "app": "where the application is on the node (the staged file or directory, or the application package)",
}
_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_WILDCARD = re.compile(r"[*?\[]")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------------------------------------------
# Inputs


def _keyed(path: Path, root: Path) -> tuple[str, Path]:
    return path.relative_to(root).as_posix(), path


def resolve_map_inputs(patterns: Sequence[str], base: Path | None = None) -> list[InputFile]:
    """Expand files, directories and globs into inputs keyed by their path relative to where they were found.

    ``blob://container/prefix`` patterns are only checked here (the flow lists them, see
    :func:`tasks.storage.list_blob_inputs`).

    A directory's files are keyed relative to the directory (``data/`` → ``a/b.txt`` for ``data/a/b.txt``), a glob's
    matches relative to the glob's fixed leading directories, a file by its name. Any content is accepted (binary
    too); hidden files inside directories are skipped.

    Args:
        patterns: files, directories or glob patterns.
        base: directory relative patterns are resolved against (default: the working directory).

    Returns:
        The inputs sorted by key (``InputFile.blob_name`` is the key).

    Raises:
        InputError: nothing matched, a path does not exist, or two inputs have the same key.
    """
    base = base or Path.cwd()
    if not patterns:
        raise InputError("no inputs given: pass files, directories, globs or blob:// prefixes with --input")
    found: list[tuple[str, Path]] = []
    for pattern in patterns:
        if is_blob_input(pattern):  # listed by the flow (tasks.storage.list_blob_inputs); checked here
            parse_blob_input(pattern)
            continue
        candidate = Path(pattern).expanduser()
        candidate = candidate if candidate.is_absolute() else base / candidate
        if glob.has_magic(pattern):
            parts = candidate.parts
            fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
            root = Path(*parts[:fixed])
            matches = sorted(Path(p) for p in glob.glob(str(candidate), recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                raise InputError(f"no files match {pattern!r}")
            found.extend(_keyed(m, root) for m in files)
        elif candidate.is_dir():
            files = sorted(
                p
                for p in candidate.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(candidate).parts)
            )
            if not files:
                raise InputError(f"directory {pattern!r} contains no files")
            found.extend(_keyed(p, candidate) for p in files)
        elif candidate.is_file():
            found.append((candidate.name, candidate))
        elif candidate.exists():
            raise InputError(f"{pattern!r} is not a regular file")
        else:
            raise InputError(f"input {pattern!r} does not exist")
    unique = dict.fromkeys((key, path.resolve()) for key, path in found)  # the same file twice is one input
    return check_unique_keys(
        [
            InputFile(path=path, blob_name=key, sha256=file_sha256(path), size=path.stat().st_size)
            for key, path in unique
        ]
    )


BLOB_SCHEME = "blob://"


def is_blob_input(pattern: str) -> bool:
    """Whether an input names blobs already in storage (``blob://container/prefix``)."""
    return pattern.startswith(BLOB_SCHEME)


def parse_blob_input(pattern: str) -> tuple[str, str]:
    """``blob://container/prefix`` → ``(container, prefix)``.

    Raises:
        InputError: no container, or an invalid container name.
    """
    from batchpipe.settings import CONTAINER_NAME_PATTERN

    container, _, prefix = pattern.removeprefix(BLOB_SCHEME).partition("/")
    if not CONTAINER_NAME_PATTERN.match(container):
        raise InputError(f"input {pattern!r}: use blob://<container>/<prefix> with a valid container name")
    return container, prefix


def blob_input_key(blob_name: str, prefix: str) -> str:
    """An input blob's key: its name relative to the prefix's directory (``in/x/a.csv`` under ``in/`` → ``x/a.csv``)."""
    base = prefix.rpartition("/")[0]
    return blob_name[len(base) + 1 :] if base else blob_name


def check_unique_keys(items: Sequence[InputFile]) -> list[InputFile]:
    """The inputs sorted by key.

    Raises:
        InputError: two inputs share a key (their outputs would collide).
    """
    by_key: dict[str, InputFile] = {}
    for item in items:
        previous = by_key.get(item.blob_name)
        if previous is not None and previous.source != item.source:
            raise InputError(
                f"two inputs have the key {item.blob_name!r} ({previous.source} and {item.source}): "
                "outputs would collide"
            )
        by_key[item.blob_name] = item
    return [by_key[key] for key in sorted(by_key)]


# ---------------------------------------------------------------------------------------------------------------
# Command template


def template_fields(template: str) -> list[str]:
    """The placeholder names a template uses (``{input}`` → ``input``; ``{{`` is a literal brace).

    Raises:
        ConfigurationError: the template is malformed (an unmatched brace, a format spec or an index).
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ConfigurationError(f"command template {template!r}: {error} (write {{{{ and }}}} for braces)") from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not _PARAM_NAME.match(name) or spec or conversion:
            raise ConfigurationError(f"template {template!r}: {{{name}}} is not a placeholder; use {{name}} only")
        names.append(name)
    return names


def check_template(template: str, parameters: Mapping[str, str], what: str = "command") -> None:
    """Check that every placeholder of a template is known (built in or a user parameter).

    Raises:
        ConfigurationError: an unknown placeholder, a parameter named like a built-in one, or an empty template.
    """
    if not template.strip():
        raise ConfigurationError(f"the {what} template is empty")
    clashes = sorted(set(parameters) & set(PLACEHOLDERS))
    if clashes:
        raise ConfigurationError(f"parameter {clashes[0]!r} is a built-in placeholder: rename it")
    for name in parameters:
        if not _PARAM_NAME.match(name):
            raise ConfigurationError(f"parameter name {name!r}: use letters, digits and underscores")
    unknown = [n for n in template_fields(template) if n not in PLACEHOLDERS and n not in parameters]
    if unknown:
        known = ", ".join(f"{{{n}}}" for n in [*PLACEHOLDERS, *parameters])
        raise ConfigurationError(
            f"the {what} template uses {{{unknown[0]}}}, which is not a placeholder (known: {known}); "
            f"pass --param {unknown[0]}=VALUE for your own"
        )


def placeholder_values(item: InputFile, index: int) -> dict[str, str]:
    """The built-in placeholder values for one input, except ``app`` (plain text, not yet quoted)."""
    key = PurePosixPath(item.blob_name)
    return {
        "input": item.blob_name,
        "input_name": key.name,
        "input_stem": key.stem,
        "input_ext": key.suffix,
        "input_key": item.blob_name,
        "output_dir": OUTPUT_DIR,
        "task_index": str(index),
    }


def render_command(template: str, values: Mapping[str, str], app: str) -> str:
    """Substitute the placeholders, each value shell-quoted; ``app`` is inserted as given (it expands variables).

    Args:
        template: the command template (a shell command line).
        values: placeholder values (built-in and user parameters).
        app: the shell expression of the application's location, e.g. ``"$AZ_BATCH_NODE_SHARED_DIR"/tool``.

    Returns:
        The command with every placeholder replaced.
    """
    quoted = {name: shlex.quote(value) for name, value in values.items()}
    quoted["app"] = app
    return template.format_map(quoted)


def render_pattern(pattern: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders in an output pattern; substituted text is glob-escaped (stays literal)."""
    return pattern.format_map({name: glob.escape(value) for name, value in values.items()} | {"app": ""})


def check_output_pattern(pattern: str) -> None:
    """Check one output pattern: relative, inside the output directory, shell-compatible wildcards.

    Raises:
        ConfigurationError: what is wrong with it.
    """
    path = PurePosixPath(pattern)
    if not pattern.strip() or path.is_absolute() or ".." in path.parts or pattern.startswith("~"):
        raise ConfigurationError(
            f"output pattern {pattern!r}: give a path relative to {{output_dir}} without '..', e.g. '*.gz'"
        )
    if "**" in pattern:
        raise ConfigurationError(f"output pattern {pattern!r}: '**' is not supported; use one '*' per directory level")


def has_wildcard(pattern: str) -> bool:
    """Whether a (rendered, glob-escaped) pattern has an unescaped wildcard."""
    return bool(_WILDCARD.search(re.sub(r"\[([*?\[])\]", "", pattern)))


def unescape_glob(text: str) -> str:
    """The literal text of a glob-escaped name (``[[]x][*]`` → ``[x]*``)."""
    return re.sub(r"\[([*?\[])\]", r"\1", text)


def fixed_prefix(pattern: str) -> str:
    """The leading directories of a pattern that hold no wildcard (``sub/*.txt`` → ``sub``)."""
    parts = pattern.split("/")
    fixed = []
    for part in parts[:-1]:
        if has_wildcard(part):
            break
        fixed.append(unescape_glob(part))
    return "/".join(fixed)


def _shell_glob(pattern: str) -> str:
    """A glob for the node's shell: wildcard characters bare, everything else backslash-escaped."""
    return "".join(c if c in "*?[]" or c.isalnum() or c in "/._-" else "\\" + c for c in pattern)


def wrap_command(command: str, patterns: Sequence[str]) -> str:
    """The task's command line: create the output directory, run the command, then list what it wrote.

    The list (``OUTPUT_LIST``: size and path of each file matching the patterns) is uploaded last; the flow uses it
    to know that every output of the task reached storage. When nothing matches, the task fails with exit code
    ``NO_OUTPUT_EXIT_CODE`` and says so on stderr.

    Args:
        command: the rendered user command.
        patterns: the rendered output patterns (relative to the output directory).

    Returns:
        ``/bin/sh -c '...'`` (Batch runs command lines without a shell).
    """
    globs = " ".join(_shell_glob(p) for p in patterns)
    shown = shlex.quote(", ".join(patterns))
    exact = [p for p in patterns if not has_wildcard(p)]
    checks = "".join(
        f"[ -f {_shell_glob(p)} ] || {{ echo batchpipe: the command did not write {OUTPUT_DIR}/{shlex.quote(p)} >&2; "
        f"exit {NO_OUTPUT_EXIT_CODE}; }}; "
        for p in exact
    )
    script = (
        f"mkdir -p {OUTPUT_DIR} || exit 1; ( {command} ) || exit $?; cd {OUTPUT_DIR} || exit 1; {checks}n=0; "
        f'for f in {globs}; do if [ -f "$f" ]; then '
        f'printf "%s\\t%s\\n" "$(wc -c < "$f" | tr -d " ")" "$f"; n=$((n+1)); fi; done > ../{OUTPUT_LIST}; '
        f"[ $n -gt 0 ] || {{ echo batchpipe: no file in {OUTPUT_DIR}/ matches {shown} >&2; "
        f"exit {NO_OUTPUT_EXIT_CODE}; }}"
    )
    return f"/bin/sh -c {shlex.quote(script)}"


def parse_output_list(text: str) -> dict[str, int]:
    """Read the wrapper's output list: ``{relative path: size}`` (malformed lines are ignored)."""
    files = {}
    for line in text.splitlines():
        size, sep, path = line.partition("\t")
        if sep and size.strip().isdigit() and path:
            files[path] = int(size)
    return files


def parse_assignments(items: Sequence[str], what: str) -> dict[str, str]:
    """``NAME=VALUE`` strings → a dict.

    Raises:
        ConfigurationError: an item has no ``=`` or an invalid name.
    """
    result = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.match(name):
            raise ConfigurationError(f"{what} {item!r}: use NAME=VALUE (NAME: letters, digits, underscores)")
        result[name] = value
    return result


def check_environment_names(names: Sequence[str]) -> None:
    """Environment variable names must be valid and must not be Batch's own (``AZ_BATCH_*``).

    Raises:
        ConfigurationError: an invalid or reserved name.
    """
    for name in names:
        if not _ENV_NAME.match(name) or name.upper().startswith("AZ_BATCH"):
            raise ConfigurationError(
                f"environment variable name {name!r}: use letters, digits, underscores, not AZ_BATCH_*"
            )


# ---------------------------------------------------------------------------------------------------------------
# Ids and layout


def run_id_for(inputs: Sequence[InputFile], recipe: Mapping[str, object], prefix: str = "batchpipe") -> str:
    """A deterministic run id: the same inputs (names and content) and recipe (command, app, pool, ...) → same id.

    The first job of the run has this id; later jobs (after the previous one completed) add ``-2``, ``-3``, ...
    """
    digest = hashlib.sha256()
    for item in sorted(inputs, key=lambda i: i.blob_name):
        digest.update(f"{item.blob_name}\0{item.sha256}\n".encode())
    for key in sorted(recipe):
        digest.update(f"{key}={recipe[key]!r}\n".encode())
    return f"{prefix}-{digest.hexdigest()[:16]}"


def job_id_for_generation(run_id: str, generation: int) -> str:
    """The job id of the run's ``generation``-th job (1 is the run id itself)."""
    return run_id if generation == 1 else f"{run_id}-{generation}"


def _unique(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def attempt_task_id(prefix: str, key: str, attempt: int) -> str:
    """A valid, deterministic task id for an input's ``attempt`` (0: ``prefix-stem-hash``, then ``...-hashrN``).

    Ids never repeat across attempts, so a resubmitted input never collides with (or duplicates) an earlier task.
    """
    unique = _unique(key) + ("" if attempt == 0 else f"r{attempt}")
    readable = _ID_CHARS.sub("-", PurePosixPath(key).stem).strip("-_") or "x"
    room = MAX_BATCH_ID - len(prefix) - len(unique) - 2
    return f"{prefix}-{readable[:room].rstrip('-_')}-{unique}"


class TaskIdIndex:
    """Maps task ids back to (input key, attempt) for many ids at once."""

    def __init__(self, prefix: str, keys: Sequence[str]) -> None:
        self.prefix = prefix
        self._by_unique: dict[str, list[str]] = {}
        for key in keys:
            self._by_unique.setdefault(_unique(key), []).append(key)

    def parse(self, task_id: str) -> tuple[str, int] | None:
        """``(key, attempt)`` or None."""
        return _parse(task_id, self.prefix, self._by_unique)


def _parse(task_id: str, prefix: str, by_unique: Mapping[str, list[str]]) -> tuple[str, int] | None:
    last = task_id.rpartition("-")[2]
    unique, _, attempt_text = last.partition("r")
    if attempt_text and not attempt_text.isdigit():
        return None
    attempt = int(attempt_text) if attempt_text else 0
    for key in by_unique.get(unique, []):
        if attempt_task_id(prefix, key, attempt) == task_id:
            return key, attempt
    return None


def output_prefix(run_id: str, key: str) -> str:
    """The blob directory an input's outputs go to: ``<run id>/<the input key's directory>``."""
    parent = PurePosixPath(key).parent.as_posix()
    return run_id if parent == "." else f"{run_id}/{parent}"


def output_list_blob(run_id: str, key: str) -> str:
    """Where the wrapper's output list of an input's successful task goes."""
    return f"{run_id}/.batchpipe/{key}.tsv"


def local_output_path(output_dir: Path, run_id: str, blob_name: str) -> Path:
    """Where an output blob goes on disk: the run's output directory, mirroring the inputs' tree."""
    return output_dir / blob_name.removeprefix(f"{run_id}/")


@dataclass(frozen=True)
class NodeApp:
    """How the application reaches the node."""

    artifact: InputFile | None  # staged by the start task; None for a container image or application package
    location: str  # shell expression for {app}
    start_command: str | None  # the start task command (None: no start task)


def staged_file_app(artifact: InputFile) -> NodeApp:
    """A single file (script, binary, zipapp): the start task copies it to the shared directory, executable."""
    name = shlex.quote(artifact.blob_name)
    script = (
        f'cp "$AZ_BATCH_TASK_WORKING_DIR"/{name} "$AZ_BATCH_NODE_SHARED_DIR"/ && '
        f'chmod +x "$AZ_BATCH_NODE_SHARED_DIR"/{name}'
    )
    return NodeApp(artifact, f'"$AZ_BATCH_NODE_SHARED_DIR"/{name}', f"/bin/sh -c {shlex.quote(script)}")


def staged_directory_app(artifact: InputFile) -> NodeApp:
    """A directory shipped as ``.tar.gz``: the start task unpacks it into the shared directory."""
    name = shlex.quote(artifact.blob_name)
    folder = shlex.quote(artifact.blob_name.removesuffix(".tar.gz"))
    script = (
        f'mkdir -p "$AZ_BATCH_NODE_SHARED_DIR"/{folder} && '
        f'tar -xzf "$AZ_BATCH_TASK_WORKING_DIR"/{name} -C "$AZ_BATCH_NODE_SHARED_DIR"/{folder}'
    )
    return NodeApp(artifact, f'"$AZ_BATCH_NODE_SHARED_DIR"/{folder}', f"/bin/sh -c {shlex.quote(script)}")


def package_app(reference: str) -> tuple[str, str | None, NodeApp]:
    """An application package ``name[:version]`` installed by Batch: ``{app}`` is its directory variable.

    Returns:
        ``(application id, version or None, NodeApp)``.

    Raises:
        ConfigurationError: the reference is malformed.
    """
    name, _, version = reference.partition(":")
    if not re.match(r"^[A-Za-z0-9_-]{1,64}$", name) or (version and not re.match(r"^[A-Za-z0-9_.-]{1,64}$", version)):
        raise ConfigurationError(f"application package {reference!r}: use NAME or NAME:VERSION")
    variable = f"AZ_BATCH_APP_PACKAGE_{name}" + (f"_{version}" if version else "")
    variable = re.sub(r"[^A-Za-z0-9_]", "_", variable)
    return name, version or None, NodeApp(None, f'"${variable}"', None)


def application_artifact(path: Path, build_dir: Path) -> NodeApp:
    """Stage an application given as a path: a directory becomes a reproducible ``.tar.gz``, a file is shipped as is.

    The blob name carries a hash of the content, so a changed application is a new blob (and a new pool start task).

    Args:
        path: a directory, or a file (script, binary, zipapp).
        build_dir: where the archive of a directory is written.

    Returns:
        How the application reaches the node.

    Raises:
        InputError: the path does not exist or the directory is empty.
    """
    import io
    import tarfile

    path = path.expanduser().resolve()
    readable = _ID_CHARS.sub("-", path.name).strip("-_") or "app"
    if path.is_file():
        digest = file_sha256(path)
        name = f"{readable}-{digest[:12]}{''.join(path.suffixes[-1:])}"
        return staged_file_app(InputFile(path=path, blob_name=name, sha256=digest, size=path.stat().st_size))
    if not path.is_dir():
        raise InputError(f"application {str(path)!r} does not exist: give a directory, a file or --image")
    files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    if not files:
        raise InputError(f"application directory {str(path)!r} is empty")
    buffer = io.BytesIO()
    # Reproducible: sorted entries, fixed times and owners, so the same directory gives the same archive (and blob).
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT, compresslevel=6) as archive:
        for file in files:
            info = archive.gettarinfo(str(file), arcname=file.relative_to(path).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with file.open("rb") as handle:
                archive.addfile(info, handle)
    data = buffer.getvalue()
    # gzip stores a time too: zero it (bytes 4-8 of the header).
    data = data[:4] + b"\0\0\0\0" + data[8:]
    digest = hashlib.sha256(data).hexdigest()
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"{readable}-{digest[:12]}.tar.gz"
    target.write_bytes(data)
    return staged_directory_app(InputFile(path=target, blob_name=target.name, sha256=digest, size=len(data)))


def parse_seconds(text: str, what: str) -> float:
    """A positive duration in the project's one syntax (``90``, ``45s``, ``30m``, ``1h30m``, ``PT30M``) → seconds.

    Raises:
        ConfigurationError: not a duration, or not positive; names ``what``.
    """
    from batchpipe.durations import DURATION_FORMS
    from batchpipe.durations import parse_seconds as parse

    try:
        seconds = parse(text)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise ConfigurationError(f"{what} takes a positive {DURATION_FORMS} (got {text!r})")
    return seconds
