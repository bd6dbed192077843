"""Pure logic of the general flow: inputs and keys, command templates, the task wrapper, ids, manifest."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tarfile
from pathlib import Path

import pytest

from batchpipe.errors import ConfigurationError, InputError
from batchpipe.manifest import build_manifest, input_record, read_manifest, verified_on_disk, write_manifest
from batchpipe.naming import InputFile, file_sha256, resolve_inputs, task_id_for
from batchpipe.workload import (
    NO_OUTPUT_EXIT_CODE,
    OUTPUT_LIST,
    TaskIdIndex,
    application_artifact,
    attempt_task_id,
    blob_input_key,
    check_output_pattern,
    check_template,
    check_unique_keys,
    fixed_prefix,
    has_wildcard,
    job_id_for_generation,
    package_app,
    parse_assignments,
    parse_blob_input,
    parse_output_list,
    parse_seconds,
    placeholder_values,
    render_command,
    render_pattern,
    resolve_map_inputs,
    run_id_for,
    unescape_glob,
    wrap_command,
)


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_inputs_are_keyed_by_their_path_under_the_directory_or_glob_root(tmp_path: Path) -> None:
    _tree(tmp_path, {"data/a.txt": "a", "data/sub/b.bin": "\0\1", "data/.hidden": "h", "logs/x/c.log": "c"})
    items = resolve_map_inputs(["data", "logs/*/*.log"], base=tmp_path)
    assert [i.blob_name for i in items] == ["a.txt", "sub/b.bin", "x/c.log"]  # binary is fine, hidden skipped
    assert items[1].sha256 == file_sha256(tmp_path / "data/sub/b.bin")
    assert [i.blob_name for i in resolve_map_inputs([str(tmp_path / "data/a.txt")])] == ["a.txt"]


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        ([], "no inputs given"),
        (["missing.txt"], "does not exist"),
        (["*.nothing"], "no files match"),
        (["empty"], "contains no files"),
        (["one/a.txt", "two/a.txt"], "two inputs have the key 'a.txt'"),
    ],
)
def test_bad_inputs_are_refused_in_one_line(tmp_path: Path, patterns: list[str], message: str) -> None:
    _tree(tmp_path, {"one/a.txt": "1", "two/a.txt": "2"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=message) as caught:
        resolve_map_inputs(patterns, base=tmp_path)
    assert "\n" not in str(caught.value)


def test_placeholders_are_substituted_shell_quoted() -> None:
    item = InputFile(Path("/x"), "dir/it's a file.tar.gz", "0" * 64, 1)
    values = placeholder_values(item, 7) | {"level": "9; rm -rf /"}
    command = render_command(
        "gzip -{level} -c {input} > {output_dir}/{input_stem}.z # {task_index} {app}", values, '"$A"/t'
    )
    assert command == (
        "gzip -'9; rm -rf /' -c 'dir/it'\"'\"'s a file.tar.gz' > outputs/'it'\"'\"'s a file.tar'.z # 7 \"$A\"/t"
    )
    assert values["input_name"] == "it's a file.tar.gz"
    assert values["input_ext"] == ".gz"


@pytest.mark.parametrize(
    ("template", "parameters", "message"),
    [
        ("echo {inptu}", {}, r"uses \{inptu\}, which is not a placeholder .*--param inptu=VALUE"),
        ("echo {input", {}, "expected '}'"),
        ("echo {input!r}", {}, "is not a placeholder"),
        ("echo {0}", {}, "is not a placeholder"),
        ("  ", {}, "template is empty"),
        ("echo {input}", {"input": "x"}, "is a built-in placeholder"),
    ],
)
def test_bad_templates_are_refused_in_one_line(template: str, parameters: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_template(template, parameters)


def test_user_parameters_and_literal_braces_are_accepted() -> None:
    check_template("awk '{{print $1}}' {input} > {output_dir}/{name}", {"name": "x"})


@pytest.mark.parametrize("pattern", ["/abs/*.txt", "../up.txt", "a/../../b", "**/*.txt", "", "~/x"])
def test_output_patterns_stay_inside_the_output_directory(pattern: str) -> None:
    with pytest.raises(ConfigurationError, match="output pattern"):
        check_output_pattern(pattern)


def test_substituted_names_stay_literal_in_output_patterns() -> None:
    item = InputFile(Path("/x"), "weird[1]*.txt", "0" * 64, 1)
    rendered = render_pattern("{input_stem}.out", placeholder_values(item, 0))
    assert rendered == "weird[[]1][*].out"
    assert not has_wildcard(rendered)
    assert unescape_glob(rendered) == "weird[1]*.out"  # the blob name Batch uploads it under
    assert has_wildcard("*.json")
    assert fixed_prefix("sub/dir/*.json") == "sub/dir"
    assert fixed_prefix("*.x") == ""


def _run_wrapped(tmp_path: Path, command: str, patterns: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        shlex.split(wrap_command(command, patterns)),  # as Batch runs it: no shell around the command line
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_wrapper_lists_what_the_command_wrote(tmp_path: Path) -> None:
    command = "printf abc > outputs/a.txt && mkdir outputs/sub && printf 12345 > outputs/sub/b.json"
    result = _run_wrapped(tmp_path, command, ["a.txt", "sub/*.json", "*.none"])
    assert result.returncode == 0, result.stderr
    assert parse_output_list((tmp_path / OUTPUT_LIST).read_text()) == {"a.txt": 3, "sub/b.json": 5}


def test_the_wrapper_keeps_the_exit_code_and_fails_when_an_output_is_missing(tmp_path: Path) -> None:
    assert _run_wrapped(tmp_path, "exit 7", ["*"]).returncode == 7
    missing = _run_wrapped(tmp_path, "true", ["result.txt"])
    assert missing.returncode == NO_OUTPUT_EXIT_CODE
    assert "did not write outputs/result.txt" in missing.stderr
    nothing = _run_wrapped(tmp_path, "true", ["*.json"])
    assert nothing.returncode == NO_OUTPUT_EXIT_CODE
    assert nothing.stderr.strip() == "batchpipe: no file in outputs/ matches *.json"


def test_attempt_ids_are_valid_distinct_and_map_back_to_their_input() -> None:
    keys = ["a.txt", "dir/a.txt", "x" * 200 + ".txt", "weird name!.txt"]
    index = TaskIdIndex("map", keys)
    ids = {attempt_task_id("map", key, attempt): (key, attempt) for key in keys for attempt in range(4)}
    assert len(ids) == 16
    for task_id, expected in ids.items():
        assert len(task_id) <= 64
        assert all(c.isalnum() or c in "-_" for c in task_id)
        assert index.parse(task_id) == expected
    assert index.parse("map-other-12345678") is None
    assert index.parse("unrelated") is None


def test_attempt_zero_of_the_tutorial_is_its_task_id(tmp_path: Path) -> None:
    (tmp_path / "harbour.txt").write_text("words")
    [item] = resolve_inputs([str(tmp_path / "harbour.txt")])
    assert attempt_task_id("topn", item.blob_name, 0) == task_id_for(item)


def test_run_ids_depend_on_inputs_and_recipe_only() -> None:
    items = [InputFile(Path("/a"), "a", "1" * 64, 1), InputFile(Path("/b"), "b", "2" * 64, 1)]
    run = run_id_for(items, {"command": "x"})
    assert run == run_id_for(list(reversed(items)), {"command": "x"})
    assert run != run_id_for(items, {"command": "y"})
    assert run != run_id_for([items[0]], {"command": "x"})
    assert (job_id_for_generation(run, 1), job_id_for_generation(run, 3)) == (run, f"{run}-3")


def test_directory_applications_are_reproducible_archives(tmp_path: Path) -> None:
    _tree(tmp_path, {"app/run.sh": "echo hi", "app/lib/x.py": "x = 1"})
    (tmp_path / "app/run.sh").chmod(0o700)
    first = application_artifact(tmp_path / "app", tmp_path / "build")
    os.utime(tmp_path / "app/run.sh", (1, 1))
    second = application_artifact(tmp_path / "app", tmp_path / "build2")
    assert first.artifact
    assert second.artifact
    assert first.artifact.blob_name == second.artifact.blob_name
    assert first.artifact.blob_name.endswith(".tar.gz")
    with tarfile.open(first.artifact.path) as archive:
        assert sorted(archive.getnames()) == ["lib/x.py", "run.sh"]
        assert archive.getmember("run.sh").mode & 0o111
    assert "tar -xzf" in (first.start_command or "")
    script = tmp_path / "tool.py"
    script.write_text("print(1)")
    single = application_artifact(script, tmp_path / "build")
    assert single.location.startswith('"$AZ_BATCH_NODE_SHARED_DIR"/tool-')
    assert "chmod +x" in (single.start_command or "")
    with pytest.raises(InputError, match="does not exist"):
        application_artifact(tmp_path / "nope", tmp_path / "build")


def test_application_packages_expand_to_their_directory_variable() -> None:
    assert package_app("ffmpeg:4.3")[:2] == ("ffmpeg", "4.3")
    assert package_app("ffmpeg:4.3")[2].location == '"$AZ_BATCH_APP_PACKAGE_ffmpeg_4_3"'
    assert package_app("tool")[2].location == '"$AZ_BATCH_APP_PACKAGE_tool"'
    with pytest.raises(ConfigurationError, match="NAME:VERSION"):
        package_app("bad name:1")


def test_assignments_and_durations() -> None:
    assert parse_assignments(["A=1", "B=x=y", "C="], "--env") == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(ConfigurationError, match="NAME=VALUE"):
        parse_assignments(["no-equals"], "--env")
    assert [parse_seconds(t, "x") for t in ("90", "45s", "30m", "2h", "1d", "1h30m")] == [
        90,
        45,
        1800,
        7200,
        86400,
        5400,
    ]
    with pytest.raises(ConfigurationError, match="30m"):
        parse_seconds("soon", "--max-wall-clock")


def test_the_manifest_round_trips_and_verifies_outputs_on_disk(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("input")
    item = InputFile(source, "in.txt", file_sha256(source), 5)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub/in.txt.out").write_text("result")
    output = {"path": "sub/in.txt.out", "blob": "run/sub/in.txt.out", "url": "http://x", "size": 6}
    output["sha256"] = file_sha256(out / "sub/in.txt.out")
    record = input_record(item, "verified", "produced in this run", ["submitted t"], None, [output])
    write_manifest(out / "manifest.json", build_manifest("run", ["run"], "pool", out, {"verified": 1}, [record]))
    manifest = read_manifest(out / "manifest.json")
    assert manifest is not None
    assert manifest["complete"] is True
    assert json.loads((out / "manifest.json").read_text())["inputs"][0]["key"] == "in.txt"
    assert verified_on_disk(manifest, item, out) == [output]
    (out / "sub/in.txt.out").write_text("tampered")  # same size, other content
    assert verified_on_disk(manifest, item, out) == []
    changed_input = InputFile(source, "in.txt", "f" * 64, 5)
    assert verified_on_disk(manifest, changed_input, out) == []
    (out / "manifest.json").write_text("{not json")
    assert read_manifest(out / "manifest.json") is None


def test_blob_inputs_are_parsed_and_keyed_relative_to_the_prefix_directory(tmp_path: Path) -> None:
    assert parse_blob_input("blob://incoming/2024/") == ("incoming", "2024/")
    assert parse_blob_input("blob://incoming") == ("incoming", "")
    with pytest.raises(InputError, match="blob://<container>/<prefix>"):
        parse_blob_input("blob://Bad_Name/x")
    assert blob_input_key("in/2024/a.csv", "in/") == "2024/a.csv"
    assert blob_input_key("in/2024-a.csv", "in/2024") == "2024-a.csv"
    assert blob_input_key("a.csv", "") == "a.csv"
    (tmp_path / "a.csv").write_text("local")
    local = resolve_map_inputs(["blob://incoming/x/", str(tmp_path / "a.csv")])  # blob inputs are listed later
    assert [i.blob_name for i in local] == ["a.csv"]
    stored = InputFile(Path("x/a.csv"), "a.csv", "md5:00", 1, container="incoming", source_blob="x/a.csv")
    assert stored.source == "blob://incoming/x/a.csv"
    with pytest.raises(InputError, match=r"two inputs have the key 'a.csv' \(.*a.csv and blob://incoming/x/a.csv\)"):
        check_unique_keys([*local, stored])


def test_the_wrapper_finds_exact_names_with_glob_characters(tmp_path: Path) -> None:
    item = InputFile(Path("/x"), "[b] n*.txt", "0" * 64, 1)
    pattern = render_pattern("{input_stem}.out", placeholder_values(item, 0))
    result = _run_wrapped(tmp_path, "printf xy > 'outputs/[b] n*.out'", [pattern])
    assert result.returncode == 0, result.stderr
    assert parse_output_list((tmp_path / OUTPUT_LIST).read_text()) == {"[b] n*.out": 2}
