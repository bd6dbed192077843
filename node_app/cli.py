"""Command line of the node application, compatible with the tutorial's task script.

Usage on a compute node (the SAS taken from an environment variable keeps it off the command line)::

    python3 $AZ_BATCH_NODE_SHARED_DIR/batchpipe-node-app-<version>-<hash>.pyz --filepath taskdata1.txt \\
        --numwords 3 --storageaccount ACCOUNT --storagecontainer output --sas-env OUTPUT_CONTAINER_SAS

The tutorial's own arguments (``--filepath --numwords --storageaccount --storagecontainer --sastoken``) work
unchanged. The output ``<stem>_OUTPUT<ext>`` is written to the working directory and uploaded as a block blob of
the same name. An empty input (0 bytes, or only whitespace) is an error, unlike in the tutorial.

Exit codes (one line ``node_app: error: <what to fix>`` on stderr, never a traceback):

====  ====================  ==================================================================================
code  name                  when
====  ====================  ==================================================================================
0     OK                    the output file was written (and uploaded unless ``--no-upload``)
2     USAGE                 bad or missing arguments, ``--numwords`` < 1, SAS given twice or not at all
3     INPUT_NOT_FOUND       ``--filepath`` does not exist
4     INPUT_NOT_A_FILE      ``--filepath`` is a directory or another non-regular file
5     INPUT_EMPTY           the input is empty (0 bytes) or contains only whitespace: no words to count
6     INPUT_NOT_UTF8        the input is not valid UTF-8 (the message gives the byte offset)
7     ENVIRONMENT           an ``AZ_BATCH_*`` variable or the variable named by ``--sas-env`` is missing/empty
8     UPLOAD_FAILED         the upload failed (HTTP status and storage error code in the message)
9     IO_ERROR              the input cannot be read or the output cannot be written (permissions, disk full)
10    UNSUPPORTED_PYTHON    the interpreter is older than Python 3.8 (checked by the zipapp's entry point)
130   INTERRUPTED           interrupted by SIGINT (Ctrl-C)
====  ====================  ==================================================================================
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from typing import NamedTuple, NoReturn

from node_app import __version__
from node_app.counting import count_words, top_words
from node_app.errors import (
    EnvironmentMissingError,
    ExitCode,
    FileAccessError,
    InputEmptyError,
    InputNotAFileError,
    InputNotFoundError,
    NodeAppError,
    UsageError,
)
from node_app.output import BatchIdentity, format_report, output_file_name

PROG = "node_app"


class UploadTarget(NamedTuple):
    """Where the output goes: the blob URL without query, and the SAS."""

    url: str
    sas: str


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors become one-line :class:`UsageError` messages."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line.

    Returns:
        the parser.
    """
    parser = _Parser(
        prog=PROG,
        description="Count the top N words of a UTF-8 text file with the Azure Batch tutorial's rules, write "
        "<stem>_OUTPUT<ext> and upload it as a block blob with a container SAS.",
    )
    parser.add_argument("--filepath", required=True, help="the text file to process (UTF-8)")
    parser.add_argument("--numwords", required=True, type=int, help="how many of the most common words to write")
    parser.add_argument(
        "--storageaccount", help="storage account name (builds the default endpoint; not needed with --blob-endpoint)"
    )
    parser.add_argument("--storagecontainer", help="container to upload the output to, e.g. output")
    parser.add_argument("--sastoken", help="container SAS with write permission (prefer --sas-env)")
    parser.add_argument("--sas-env", metavar="NAME", help="read the container SAS from environment variable NAME")
    parser.add_argument(
        "--blob-endpoint",
        metavar="URL",
        help="blob service URL; default https://<account>.blob.core.windows.net "
        "(Azurite: http://127.0.0.1:PORT/<account>)",
    )
    parser.add_argument("--casefold", action="store_true", help="count words case-insensitively (default: off)")
    parser.add_argument(
        "--strip-bom", action="store_true", help="ignore a UTF-8 byte-order mark at the start (default: kept)"
    )
    parser.add_argument("--no-upload", action="store_true", help="only write the output file")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the program.

    Args:
        argv: the arguments without the program name; ``sys.argv[1:]`` when None.
        environ: the environment; ``os.environ`` when None.

    Returns:
        the exit code (see the module docstring).
    """
    try:
        return _run(argv, os.environ if environ is None else environ)
    except NodeAppError as error:
        _print_error(str(error))
        return int(error.exit_code)
    except KeyboardInterrupt:
        _print_error("interrupted")
        return int(ExitCode.INTERRUPTED)


def _run(argv: Sequence[str] | None, environ: Mapping[str, str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_request:  # --help and --version print and ask to exit
        return exit_request.code if isinstance(exit_request.code, int) else int(ExitCode.USAGE)
    if args.numwords < 1:
        raise UsageError(f"--numwords must be at least 1, got {args.numwords}")
    name = output_file_name(args.filepath)
    target = None if args.no_upload else _upload_target(args, environ, name)
    identity = BatchIdentity.from_environ(environ)
    _check_input(args.filepath)
    try:
        with open(args.filepath, "rb") as stream:
            counts = count_words(stream, casefold=args.casefold, strip_bom=args.strip_bom)
    except OSError as error:
        raise FileAccessError(f"cannot read input file {args.filepath!r}: {error.strerror or error}") from None
    if not counts:
        raise InputEmptyError(f"input file {args.filepath!r} contains only whitespace: no words to count")
    top = top_words(counts, args.numwords)
    report = format_report(top, identity).encode("utf-8")
    try:
        with open(name, "wb") as output:
            output.write(report)
    except OSError as error:
        raise FileAccessError(f"cannot write output file {name!r}: {error.strerror or error}") from None
    summary = f"{PROG}: wrote {name} ({len(top)} of {len(counts)} distinct words)"
    if target is not None:
        from node_app.upload import upload_block_blob

        result = upload_block_blob(target.url, target.sas, report)
        summary += f"; uploaded to {target.url} (HTTP {result.status}, attempts: {result.attempts})"
    print(summary)
    return int(ExitCode.OK)


def _upload_target(args: argparse.Namespace, environ: Mapping[str, str], blob_name: str) -> UploadTarget:
    """Check the upload arguments before any work is done."""
    # Imported here: urllib.request pulls in ssl, http.client and email (~20 ms), which --no-upload never needs.
    from node_app.upload import blob_url, default_blob_endpoint

    if not args.storagecontainer:
        raise UsageError("--storagecontainer is required (or pass --no-upload)")
    if args.blob_endpoint:
        endpoint = args.blob_endpoint
    elif args.storageaccount:
        endpoint = default_blob_endpoint(args.storageaccount)
    else:
        raise UsageError("--storageaccount or --blob-endpoint is required (or pass --no-upload)")
    if args.sastoken and args.sas_env:
        raise UsageError("give the SAS either with --sastoken or with --sas-env, not both")
    if args.sas_env:
        sas = environ.get(args.sas_env, "")
        if not sas:
            raise EnvironmentMissingError(
                f"environment variable {args.sas_env} (named by --sas-env) is missing or empty"
            )
    elif args.sastoken:
        sas = args.sastoken
    else:
        raise UsageError("a container SAS is required: --sas-env NAME or --sastoken (or pass --no-upload)")
    return UploadTarget(blob_url(endpoint, args.storagecontainer, blob_name), sas)


def _check_input(path: str) -> None:
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InputNotFoundError(f"input file {path!r} does not exist (check --filepath)") from None
    except OSError as error:
        raise FileAccessError(f"cannot access input file {path!r}: {error.strerror or error}") from None
    if stat.S_ISDIR(status.st_mode):
        raise InputNotAFileError(f"input {path!r} is a directory; --filepath must name a text file")
    if not stat.S_ISREG(status.st_mode):
        raise InputNotAFileError(f"input {path!r} is not a regular file; --filepath must name a text file")
    if status.st_size == 0:
        raise InputEmptyError(f"input file {path!r} is empty (0 bytes): no words to count")


def _print_error(message: str) -> None:
    one_line = " ".join(message.splitlines())
    sys.stderr.write(f"{PROG}: error: {one_line}\n")
    sys.stderr.flush()
