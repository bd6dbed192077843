"""Input discovery and the deterministic ids derived from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchpipe.errors import InputError
from batchpipe.naming import InputFile, job_id_for, output_blob_name, resolve_inputs, task_id_for

BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _write(path: Path, text: str = "some words here\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def test_files_directories_and_globs_expand_sorted_and_deduplicated(tmp_path: Path) -> None:
    _write(tmp_path / "b.txt")
    _write(tmp_path / "dir" / "a.txt")
    _write(tmp_path / "dir" / "nested" / "c.md")
    found = resolve_inputs(["b.txt", "dir", "*.txt", str(tmp_path / "dir" / "a.txt")], base=tmp_path)
    assert [f.blob_name for f in found] == ["a.txt", "b.txt", "c.md"]
    assert all(len(f.sha256) == 64 and f.size > 0 for f in found)


@pytest.mark.parametrize(
    ("setup", "patterns", "message"),
    [
        (lambda d: None, [], "no input files given"),
        (lambda d: None, ["missing.txt"], "does not exist"),
        (lambda d: None, ["*.nothing"], "no files match"),
        (lambda d: (d / "empty").mkdir(), ["empty"], "contains no files"),
        (lambda d: (d / "e.txt").write_bytes(b""), ["e.txt"], "is empty"),
        (lambda d: (d / "bin.dat").write_bytes(b"abc\x00def"), ["bin.dat"], "is binary"),
        (lambda d: (d / "latin.txt").write_bytes("café".encode("latin-1")), ["latin.txt"], "not UTF-8"),
        (lambda d: (d / "cut.txt").write_bytes("é".encode()[:1]), ["cut.txt"], "UTF-8"),
        (
            lambda d: (_write(d / "x" / "same.txt"), _write(d / "y" / "same.txt")),
            ["x", "y"],
            "two inputs are named 'same.txt'",
        ),
    ],
)
def test_bad_input_is_refused_in_one_line(tmp_path: Path, setup: object, patterns: list[str], message: str) -> None:
    setup(tmp_path)  # type: ignore[operator]
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        resolve_inputs(patterns, base=tmp_path)
    assert "\n" not in str(caught.value)


def test_a_bom_and_unicode_text_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "u.txt"
    path.write_bytes("\ufeffnaïve café — ok".encode())
    assert resolve_inputs(["u.txt"], base=tmp_path)[0].blob_name == "u.txt"


def _item(name: str, sha: str = "0" * 64) -> InputFile:
    return InputFile(path=Path(name), blob_name=name, sha256=sha, size=1)


def test_output_name_follows_the_tutorial() -> None:
    assert output_blob_name("taskdata1.txt") == "taskdata1_OUTPUT.txt"
    assert output_blob_name("notes") == "notes_OUTPUT"
    assert output_blob_name("a.b.txt") == "a.b_OUTPUT.txt"


def test_task_ids_are_valid_deterministic_and_distinct() -> None:
    names = ["taskdata1.txt", "weird name (1).txt", "x" * 200 + ".txt", "ünïcode.txt", "...txt"]
    ids = [task_id_for(_item(n)) for n in names]
    assert all(BATCH_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert ids == [task_id_for(_item(n)) for n in names]
    assert ids[0].startswith("topn-taskdata1-")


def test_task_ids_stay_unique_for_ten_thousand_inputs() -> None:
    ids = {task_id_for(_item(f"file-{i:05d}.txt")) for i in range(10_000)}
    assert len(ids) == 10_000
    # Batch compares ids case-insensitively.
    assert len({i.lower() for i in ids}) == 10_000


def test_job_id_depends_on_content_word_count_and_pool_only() -> None:
    a, b = _item("a.txt", "1" * 64), _item("b.txt", "2" * 64)
    job = job_id_for([a, b], 3, "pool")
    assert BATCH_ID.match(job)
    assert job == job_id_for([b, a], 3, "pool")
    assert job != job_id_for([a, _item("b.txt", "3" * 64)], 3, "pool")
    assert job != job_id_for([a, b], 4, "pool")
    assert job != job_id_for([a, b], 3, "other")
