"""The output file's name and content, byte for byte as the tutorial writes them."""

from __future__ import annotations

import pytest

from node_app.errors import EnvironmentMissingError
from node_app.output import BATCH_VARIABLES, BatchIdentity, format_report, output_file_name

IDENTITY = BatchIdentity(node="tvmps_node1", task="topNtask0", job="PythonTutorialJob", pool="PythonTutorialPool")


def test_report_is_byte_for_byte_the_tutorials() -> None:
    expected = (
        "Word\tCount\n"
        "------------------------------\n"
        "the:\t12\n"
        "you\u2019re:\t3\n"
        ":\t2\n"
        "------------------------------\n"
        "Node: tvmps_node1\n"
        "Task: topNtask0\n"
        "Job:  PythonTutorialJob\n"
        "Pool: PythonTutorialPool\n"
    )
    report = format_report([("the", 12), ("you\u2019re", 3), ("", 2)], IDENTITY)
    assert report.encode("utf-8") == expected.encode("utf-8")


def test_report_without_words_keeps_the_frame() -> None:
    assert format_report([], IDENTITY).splitlines()[:3] == ["Word\tCount", "-" * 30, "-" * 30]


@pytest.mark.parametrize(
    ("filepath", "name"),
    [
        ("taskdata1.txt", "taskdata1_OUTPUT.txt"),
        ("dir/sub/taskdata2.txt", "taskdata2_OUTPUT.txt"),
        ("archive.tar.gz", "archive.tar_OUTPUT.gz"),
        ("noextension", "noextension_OUTPUT"),
        (".hidden", ".hidden_OUTPUT"),
    ],
)
def test_output_file_name(filepath: str, name: str) -> None:
    assert output_file_name(filepath) == name


def test_identity_is_read_from_the_batch_variables() -> None:
    environ = dict(zip(BATCH_VARIABLES, IDENTITY, strict=True))
    assert BatchIdentity.from_environ(environ) == IDENTITY


def test_missing_or_empty_batch_variables_are_all_named() -> None:
    environ = {"AZ_BATCH_NODE_ID": "n", "AZ_BATCH_TASK_ID": "", "AZ_BATCH_JOB_ID": "j"}
    with pytest.raises(EnvironmentMissingError, match="AZ_BATCH_TASK_ID, AZ_BATCH_POOL_ID"):
        BatchIdentity.from_environ(environ)
