"""Error classes of the node application and the exit code each one maps to.

Every expected failure is reported as one line ``node_app: error: <what to fix>`` on stderr, without a traceback,
and the process exits with the code of its class:

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
10    UNSUPPORTED_PYTHON    the interpreter is older than Python 3.8
130   INTERRUPTED           interrupted by SIGINT (Ctrl-C)
====  ====================  ==================================================================================
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes, one per class of failure."""

    OK = 0
    USAGE = 2
    INPUT_NOT_FOUND = 3
    INPUT_NOT_A_FILE = 4
    INPUT_EMPTY = 5
    INPUT_NOT_UTF8 = 6
    ENVIRONMENT = 7
    UPLOAD_FAILED = 8
    IO_ERROR = 9
    UNSUPPORTED_PYTHON = 10
    INTERRUPTED = 130


class NodeAppError(Exception):
    """An expected failure: its message says what to fix, its class gives the exit code."""

    exit_code = ExitCode.IO_ERROR


class UsageError(NodeAppError):
    """The command line is wrong."""

    exit_code = ExitCode.USAGE


class InputNotFoundError(NodeAppError):
    """The input file does not exist."""

    exit_code = ExitCode.INPUT_NOT_FOUND


class InputNotAFileError(NodeAppError):
    """The input path is a directory or another non-regular file."""

    exit_code = ExitCode.INPUT_NOT_A_FILE


class InputEmptyError(NodeAppError):
    """The input has no words."""

    exit_code = ExitCode.INPUT_EMPTY


class InputNotUtf8Error(NodeAppError):
    """The input is not valid UTF-8."""

    exit_code = ExitCode.INPUT_NOT_UTF8

    def __init__(self, offset: int, reason: str) -> None:
        """Describe where decoding failed.

        Args:
            offset: byte offset of the first invalid byte in the file.
            reason: the decoder's explanation, e.g. ``invalid start byte``.
        """
        super().__init__(f"input is not valid UTF-8: {reason} at byte offset {offset}")
        self.offset = offset


class EnvironmentMissingError(NodeAppError):
    """A required environment variable is missing or empty."""

    exit_code = ExitCode.ENVIRONMENT


class UploadError(NodeAppError):
    """The output could not be uploaded."""

    exit_code = ExitCode.UPLOAD_FAILED


class FileAccessError(NodeAppError):
    """The input cannot be read or the output cannot be written."""

    exit_code = ExitCode.IO_ERROR
