"""The autoscale formula language: lexer, parser, types, operators, functions, sample methods and errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batch_emulator.autoscale.errors import (
    FormulaError,
    FormulaSyntaxError,
    FormulaTypeError,
    InsufficientSampleData,
    InvalidAutoScalingSettings,
)
from batch_emulator.autoscale.evaluator import Environment, Evaluation, evaluate
from batch_emulator.autoscale.lexer import tokenize
from batch_emulator.autoscale.parser import MAX_FORMULA_LENGTH, parse
from batch_emulator.autoscale.samples import METRIC_NAMES, SampleHistory
from batch_emulator.autoscale.values import Interval, Vec, format_value

NOW = datetime(2026, 11, 27, 14, 0, 0, tzinfo=UTC)  # a Friday


def run(formula: str, **env: object) -> Evaluation:
    return evaluate(formula, Environment(now=NOW, rand=lambda: 0.25, **env))  # type: ignore[arg-type]


def value_of(expression: str, **env: object) -> object:
    return run(f"x = {expression};", **env).variables["x"]


def error_of(formula: str, **env: object) -> FormulaError:
    with pytest.raises(FormulaError) as caught:
        run(formula, **env)
    return caught.value


def test_tokens_carry_lines_and_columns_and_skip_comments() -> None:
    tokens = tokenize('a = 1; // note\n/* block\n comment */ $B=="x"')
    assert [(t.kind, t.text, t.line, t.column) for t in tokens] == [
        ("name", "a", 1, 1),
        ("op", "=", 1, 3),
        ("number", "1", 1, 5),
        ("op", ";", 1, 6),
        ("name", "$B", 3, 13),
        ("op", "==", 3, 15),
        ("string", '"x"', 3, 17),
        ("end", "", 3, 20),
    ]


@pytest.mark.parametrize(
    ("formula", "position", "detail"),
    [
        ("$TargetDedicatedNodes = 1 +", (1, 28), "expected a value"),
        ("x = 1\ny = 2", (2, 1), "expected ';' between statements"),
        ("x = max(1, 2", (1, 13), "expected ',' or ')'"),
        ("x = 1 # 2", (1, 7), "unexpected character '#'"),
        ('x = "open', (1, 5), "unterminated string or comment"),
        ("x = a ? 1", (1, 10), "expected ':'"),
    ],
)
def test_syntax_errors_say_where(formula: str, position: tuple[int, int], detail: str) -> None:
    with pytest.raises(FormulaSyntaxError) as caught:
        parse(formula)
    assert (caught.value.line, caught.value.column) == position
    assert detail in caught.value.detail
    assert caught.value.code == "AutoScalingFormulaSyntaxError"


def test_limits_of_a_formula() -> None:
    with pytest.raises(FormulaSyntaxError, match="limit is 8192"):
        parse("x=1;" * (MAX_FORMULA_LENGTH // 4 + 1))
    with pytest.raises(FormulaSyntaxError, match="at most 100 statements"):
        parse(";".join(f"x{index}=1" for index in range(101)))
    assert len(parse(";;x = 1;;").statements) == 1


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("-2 - -3", 1.0),
        ("7 / 2", 3.5),
        ("1 / 0", float("inf")),
        ("2 > 1 && 3 >= 3", 1.0),
        ("0 || 0", 0.0),
        ("!0", 1.0),
        ("!5", 0.0),
        ("1 < 2 == 1", 1.0),
        ("1 ? 2 : 3", 2.0),
        ("0 ? 2 : 0 ? 3 : 4", 4.0),
        ('"abc" < "abd"', 1.0),
        ('"a" == "a"', 1.0),
        ("TimeInterval_Minute > TimeInterval_Second", 1.0),
        ("time() - TimeInterval_Hour < time()", 1.0),
        ("1e3 + .5", 1000.5),
    ],
)
def test_operators(expression: str, expected: float) -> None:
    assert value_of(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("[1, 2] + 1", Vec((2.0, 3.0))),
        ("2 * [1, 2]", Vec((2.0, 4.0))),
        ("[1, 2] * [3, 4]", Vec((3.0, 8.0))),
        ("-[1, 2]", Vec((-1.0, -2.0))),
        ("TimeInterval_Minute * 2", Interval(120.0)),
        ("2 * TimeInterval_Minute", Interval(120.0)),
        ("TimeInterval_Hour / 4 - TimeInterval_Minute", Interval(840.0)),
        ("-TimeInterval_Day", Interval(-86400.0)),
        ('time() - time("2026-11-27T13:00:00Z")', Interval(3600.0)),
        ('time("Fri, 27 Nov 2026 13:00:00 GMT") + TimeInterval_Week', datetime(2026, 12, 4, 13, tzinfo=UTC)),
        ("TimeInterval_Second + time()", datetime(2026, 11, 27, 14, 0, 1, tzinfo=UTC)),
    ],
)
def test_types(expression: str, expected: object) -> None:
    assert value_of(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('"a" + 1', "'+' does not take a string and a double"),
        ("time() + time()", "'+' does not take a timestamp and a timestamp"),
        ("[1, 2] + [1, 2, 3]", "different lengths"),
        ("[1] < 2", "does not compare a doubleVec with a double"),
        ('"a" ? 1 : 2', "needs a double, not a string"),
        ('avg("a")', "avg takes doubles and doubleVecs, not a string"),
        ("TimeInterval_Second.hour", "a timeinterval has no member hour"),
        ("(1).GetSample(1)", "GetSample() is a method of sampled service variables"),
        ("val([1, 2], 2)", "index 2 is outside the vector of length 2"),
        ('time("yesterday")', "cannot read 'yesterday'"),
        ("avg()", "avg() of an empty list"),
    ],
)
def test_type_errors(expression: str, message: str) -> None:
    error = error_of(f"x = {expression};")
    assert isinstance(error, FormulaTypeError)
    assert message in error.detail
    assert error.line == 1


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("avg(1, [2, 3], 6)", 3.0),
        ("len([1, 2], 3)", 3.0),
        ("count([1, 2], 3)", 3.0),
        ("sum(1, 2, [3])", 6.0),
        ("max([1, 9], 3)", 9.0),
        ("min(4, [2, 8])", 2.0),
        ("range(4, [2, 8])", 6.0),
        ("norm(3, 4)", 5.0),
        ("std(2, 4, 4, 4, 5, 5, 7, 9)", pytest.approx(2.138, abs=1e-3)),
        ("percentile([15, 20, 35, 40, 50], 40)", 20.0),
        ("percentile([15, 20, 35, 40, 50], 100)", 50.0),
        ("val([5, 6, 7], 1)", 6.0),
        ("lg(8)", 3.0),
        ("ln(1)", 0.0),
        ("log(1000)", pytest.approx(3.0)),
        ("log([10, 100])", Vec((1.0, 2.0))),
        ("lg(0)", float("-inf")),
        ("ceil(1.2) + floor(1.8) + round(2.5)", 2.0 + 1.0 + 3.0),
        ("rand()", 0.25),
        ("time().year + time().month + time().day", 2026 + 11 + 27),
        ("time().weekday", 5.0),
        ("time().hour * 100 + time().minute + time().second", 1400.0),
    ],
)
def test_functions(expression: str, expected: object) -> None:
    assert value_of(expression) == expected


def test_unknown_function_and_method_are_syntax_errors() -> None:
    unknown = error_of("$TargetDedicatedNodes = median(1, 2);")
    assert (unknown.code, unknown.message_value) == (
        "AutoScalingFormulaSyntaxError",
        "Line 1, Col 25: unknown function median()",
    )
    method = error_of("x = $CPUPercent.Latest();")
    assert method.message_value == "Line 1, Col 17: unknown method Latest()"


def test_variables_must_be_assigned_before_use_and_service_metrics_are_read_only() -> None:
    assert (error_of("x = y + 1;").code, error_of("x = y + 1;").detail) == (
        "AutoScalingFormulaEvaluationError",
        "Undefined symbol: y",
    )
    assert error_of("$ActiveTasks = 3;").detail == "$ActiveTasks is a read-only service variable"
    assert value_of("$activetasks", metrics={"$ActiveTasks": 4.0}) == 4.0  # service names ignore case


def test_stop_ends_the_evaluation_with_what_was_assigned() -> None:
    result = run("$TargetDedicatedNodes = 2; stop(); $TargetDedicatedNodes = 9;")
    assert result.target_dedicated == 2


def test_aliases_and_their_precedence() -> None:
    assert run("$TargetDedicated = 3;").target_dedicated == 3
    assert run("$TargetDedicated = 3; $TargetDedicatedNodes = 5;").target_dedicated == 5
    assert run("$TargetLowPriority = 4;").target_low_priority == 4
    assert "$TargetDedicated=3" in run("$TargetDedicated = 3;").results


def test_targets_are_whole_nodes_and_must_be_usable() -> None:
    result = run("$TargetDedicatedNodes = 2.9; $TargetLowPriorityNodes = $TargetDedicatedNodes / 2;")
    assert (result.target_dedicated, result.target_low_priority) == (2, 1)
    assert result.results.startswith("$TargetDedicatedNodes=2.9;$TargetLowPriorityNodes=1.45;")
    for bad in ("$TargetDedicatedNodes = -1;", "$TargetDedicatedNodes = 1 / 0;", '$TargetDedicatedNodes = "two";'):
        assert isinstance(error_of(bad), InvalidAutoScalingSettings)
    option = error_of('$NodeDeallocationOption = "later";')
    assert option.code == "InvalidAutoScalingSettings"
    assert "requeue, terminate, taskcompletion, retaineddata" in option.detail
    assert run('$NodeDeallocationOption = "Terminate";').deallocation_option == "terminate"


def test_results_format_every_type() -> None:
    result = run('v = [1, 2.5]; s = "text"; t = time(); i = TimeInterval_Day + 90 * TimeInterval_Second; d = 1/3;')
    assert result.results == (
        "$TargetDedicatedNodes=0;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue;"
        "d=0.333333;i=1.00:01:30;s=text;t=2026-11-27T14:00:00.000Z;v=[1,2.5]"
    )
    assert format_value(1234567.0) == "1.23457e+06"


def history_of(values: list[float], *, every: float = 30.0) -> SampleHistory:
    samples = SampleHistory(METRIC_NAMES)
    for index, value in enumerate(values):
        samples.record(NOW.timestamp() - (len(values) - index - 1 / 30) * every, {"$RunningTasks": value})
    return samples


def test_sample_methods() -> None:
    samples = history_of([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])  # the last five minutes, oldest first
    env = {"history": samples, "metrics": {"$RunningTasks": 10.0}}
    assert value_of("$RunningTasks.GetSample(3)", **env) == Vec((8.0, 9.0, 10.0))
    assert value_of("$RunningTasks.GetSample(TimeInterval_Minute * 2)", **env) == Vec((7.0, 8.0, 9.0, 10.0))
    assert value_of("$RunningTasks.GetSample(TimeInterval_Minute, TimeInterval_Minute * 2)", **env) == Vec((7.0, 8.0))
    assert value_of("$RunningTasks.GetSamplePercent(TimeInterval_Minute * 10)", **env) == 50.0
    assert value_of("$RunningTasks.GetSamplePercent(TimeInterval_Minute * 2, TimeInterval_Minute * 4)", **env) == 100.0
    assert value_of("$RunningTasks.Count()", **env) == 10.0
    assert value_of("$RunningTasks.GetSamplePeriod()", **env) == Interval(30.0)
    assert value_of("$RunningTasks.HistoryBeginTime()", **env) == datetime(2026, 11, 27, 13, 55, 1, tzinfo=UTC)
    since = 'time("2026-11-27T13:58:00Z")'
    assert value_of(f"$RunningTasks.GetSample({since})", **env) == Vec((7.0, 8.0, 9.0, 10.0))
    assert value_of("$RunningTasks * 2", **env) == 20.0  # a metric used as a value is its current value


def test_sample_percent_requirements() -> None:
    samples = history_of([1, 2, 3, 4, 5])
    env = {"history": samples}
    assert value_of("$RunningTasks.GetSample(TimeInterval_Minute * 5, 50)", **env) == Vec((1.0, 2.0, 3.0, 4.0, 5.0))
    short = error_of("x = $RunningTasks.GetSample(TimeInterval_Minute * 5, 75);", **env)
    assert isinstance(short, InsufficientSampleData)
    assert (
        short.message_value == "Line 1, Col 19: Insufficient data from data set: $RunningTasks wanted 75%, received 50%"
    )
    empty = error_of("x = $CPUPercent.GetSample(1);")
    assert empty.code == "InsufficientSampleData"
    assert error_of("x = $CPUPercent.HistoryBeginTime();").code == "InsufficientSampleData"


def test_look_back_windows_shrink_with_the_time_scale() -> None:
    samples = history_of([1.0] * 20, every=0.05)  # a sample every 30 service seconds at 600x
    env = {"history": samples, "time_scale": 600.0}
    assert value_of("$RunningTasks.GetSamplePercent(TimeInterval_Minute * 10)", **env) == 100.0
    assert len(value_of("$RunningTasks.GetSample(TimeInterval_Minute * 5)", **env)) == 10  # type: ignore[arg-type]


def test_history_is_bounded() -> None:
    samples = SampleHistory(["$x"], max_samples=4)
    for index in range(11):
        samples.record(float(index), {"$x": float(index)})
    assert samples.count() == 4
    assert samples.latest("$x", 10) == [7.0, 8.0, 9.0, 10.0]
    assert samples.between("$x", 0.0, 8.0) == [7.0, 8.0]
    assert samples.begin_time() == datetime.fromtimestamp(7.0, UTC)
