"""Evaluator of the autoscale formula language.

A parsed formula is compiled once into Python closures (cached by its text), then run against an
:class:`Environment`: the pool's current targets, its metrics and the time. The result holds every
variable the formula assigned and the targets the pool should move to, or a :class:`FormulaError`
whose ``code`` is the one the service reports in ``autoScaleRun.error``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache

from batch_emulator.autoscale import parser as ast
from batch_emulator.autoscale.errors import (
    FormulaError,
    FormulaEvaluationError,
    FormulaSyntaxError,
    FormulaTypeError,
    InsufficientSampleData,
    InvalidAutoScalingSettings,
)
from batch_emulator.autoscale.samples import METRIC_NAMES, SAMPLE_PERIOD_SECONDS, Metric, SampleHistory
from batch_emulator.autoscale.values import (
    TIME_INTERVALS,
    Interval,
    Vec,
    format_value,
    timestamp_member,
    type_name,
)

DEDICATED = "$TargetDedicatedNodes"
LOW_PRIORITY = "$TargetLowPriorityNodes"
DEALLOCATION = "$NodeDeallocationOption"
#: Read-write service variables, their aliases, and the variable each alias stands for.
_ALIASES = {"$TargetDedicated": DEDICATED, "$TargetLowPriority": LOW_PRIORITY}
_READ_WRITE = {name.lower(): name for name in (DEDICATED, LOW_PRIORITY, DEALLOCATION, *_ALIASES)}
_METRIC_ALIASES = {"$currentdedicated": "$CurrentDedicatedNodes", "$currentlowpriority": "$CurrentLowPriorityNodes"}
_METRICS = {name.lower(): name for name in METRIC_NAMES} | _METRIC_ALIASES
_INTERVALS = {name.lower(): Interval(seconds) for name, seconds in TIME_INTERVALS.items()}
#: ``$NodeDeallocationOption`` values, usable as bare words (``$NodeDeallocationOption = taskcompletion``).
DEALLOCATION_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")

Value = object
Code = Callable[["_Frame"], Value]


@dataclass
class Environment:
    """What a formula sees of its pool.

    Attributes:
        target_dedicated: The pool's current ``$TargetDedicatedNodes``.
        target_low_priority: The pool's current ``$TargetLowPriorityNodes``.
        metrics: Current values of the read-only service variables (canonical names, missing ones are 0).
        history: Their recorded samples.
        now: The evaluation time (``time()``), real.
        time_scale: Service seconds per real second (look-back intervals shrink by it).
        rand: Source of ``rand()``.
    """

    target_dedicated: float = 0.0
    target_low_priority: float = 0.0
    metrics: Mapping[str, float] = field(default_factory=dict)
    history: SampleHistory = field(default_factory=lambda: SampleHistory(METRIC_NAMES))
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    time_scale: float = 1.0
    rand: Callable[[], float] = random.random


@dataclass
class Evaluation:
    """The outcome of one successful evaluation."""

    variables: dict[str, Value]
    target_dedicated: int
    target_low_priority: int
    deallocation_option: str

    @property
    def results(self) -> str:
        """``autoScaleRun.results``: the service variables first, then the user variables by name."""
        parts = [
            f"{DEDICATED}={format_value(self.variables[DEDICATED])}",
            f"{LOW_PRIORITY}={format_value(self.variables[LOW_PRIORITY])}",
            f"{DEALLOCATION}={self.deallocation_option}",
        ]
        fixed = {DEDICATED, LOW_PRIORITY, DEALLOCATION}
        for name in sorted(name for name in self.variables if name not in fixed):
            parts.append(f"{name}={format_value(self.variables[name])}")
        return ";".join(parts)


class _Stop(Exception):
    """``stop()`` was called."""


class _Frame:
    __slots__ = ("assigned", "env", "metrics", "variables")

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.variables: dict[str, Value] = {}
        self.assigned: set[str] = set()  # read-write service variables (and aliases) the formula set
        self.metrics: dict[str, Metric] = {}

    def metric(self, name: str) -> Metric:
        found = self.metrics.get(name)
        if found is None:
            found = Metric(name, float(self.env.metrics.get(name, 0.0)), self.env.history)
            self.metrics[name] = found
        return found


# --- helpers -------------------------------------------------------------------------------------------------
def _fail(node: ast.Node, detail: str) -> FormulaTypeError:
    return FormulaTypeError(detail, node.line, node.column)


def _plain(value: Value) -> Value:
    """A metric used as a value stands for its current value."""
    return value.current if isinstance(value, Metric) else value


def _double(node: ast.Node, value: Value, what: str) -> float:
    value = _plain(value)
    if not isinstance(value, float):
        raise _fail(node, f"{what} needs a double, not a {type_name(value)}")
    return value


def _flatten(node: ast.Node, values: Sequence[Value], what: str) -> list[float]:
    """A doubleVecList argument list as one list of doubles."""
    flat: list[float] = []
    for raw in values:
        value = _plain(raw)
        if isinstance(value, float):
            flat.append(value)
        elif isinstance(value, Vec):
            flat.extend(value)
        else:
            raise _fail(node, f"{what} takes doubles and doubleVecs, not a {type_name(value)}")
    return flat


def _divide(left: float, right: float) -> float:
    if right:
        return left / right
    if left == 0 or left != left:  # noqa: PLR0124 - NaN check
        return math.nan
    return math.copysign(math.inf, left) * math.copysign(1.0, right)


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
}
_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _arithmetic(node: ast.Binary, left: Value, right: Value) -> Value:
    op = node.op
    apply = _ARITHMETIC[op]
    if isinstance(left, float) and isinstance(right, float):
        return apply(left, right)
    if isinstance(left, Vec) and isinstance(right, float):
        return Vec(apply(item, right) for item in left)
    if isinstance(left, float) and isinstance(right, Vec):
        return Vec(apply(left, item) for item in right)
    if isinstance(left, Vec) and isinstance(right, Vec):
        if len(left) != len(right):
            raise _fail(node, f"'{op}' on doubleVecs of different lengths ({len(left)} and {len(right)})")
        return Vec(apply(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, Interval):
        if isinstance(right, Interval) and op in "+-":
            return Interval(apply(left.seconds, right.seconds))
        if isinstance(right, float) and op in "*/":
            return Interval(apply(left.seconds, right))
        if isinstance(right, datetime) and op == "+":
            return right + timedelta(seconds=left.seconds)
    if isinstance(left, float) and isinstance(right, Interval) and op == "*":
        return Interval(left * right.seconds)
    if isinstance(left, datetime):
        if isinstance(right, Interval) and op in "+-":
            return left + timedelta(seconds=apply(0.0, right.seconds))
        if isinstance(right, datetime) and op == "-":
            return Interval((left - right).total_seconds())
    raise _fail(node, f"'{op}' does not take a {type_name(left)} and a {type_name(right)}")


def _compare(node: ast.Binary, left: Value, right: Value) -> float:
    if isinstance(left, Interval) and isinstance(right, Interval):
        left, right = left.seconds, right.seconds
    for kind in (float, str, datetime):
        if isinstance(left, kind) and isinstance(right, kind):
            return 1.0 if _COMPARE[node.op](left, right) else 0.0
    raise _fail(node, f"'{node.op}' does not compare a {type_name(left)} with a {type_name(right)}")


# --- functions -----------------------------------------------------------------------------------------------
def _nonempty(node: ast.Node, values: list[float], name: str) -> list[float]:
    if not values:
        raise _fail(node, f"{name}() of an empty list")
    return values


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((item - mean) ** 2 for item in values) / (len(values) - 1))


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    rank = math.ceil(max(0.0, min(100.0, percent)) / 100 * len(ordered))
    return ordered[max(0, rank - 1)]


def _log(base: Callable[[float], float]) -> Callable[[float], float]:
    def apply(value: float) -> float:
        if value > 0:
            return base(value)
        return -math.inf if value == 0 else math.nan

    return apply


def _component_wise(apply: Callable[[float], float]) -> Callable[[ast.Call, list[Value], _Frame], Value]:
    """``f(double)`` gives a double; ``f(doubleVecList)`` gives a doubleVec."""

    def function(node: ast.Call, args: list[Value], frame: _Frame) -> Value:
        if len(args) == 1 and isinstance(_plain(args[0]), float):
            return apply(_double(node, args[0], node.name))
        return Vec(apply(item) for item in _flatten(node, args, node.name))

    return function


def _aggregate(apply: Callable[[list[float]], float], *, empty_ok: bool = False) -> Callable[..., Value]:
    def function(node: ast.Call, args: list[Value], frame: _Frame) -> Value:
        values = _flatten(node, args, node.name)
        return apply(values if empty_ok else _nonempty(node, values, node.name))

    return function


def _parse_time(node: ast.Node, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError) as error:
            raise _fail(node, f"time() cannot read {text!r}: use W3C-DTF or RFC 1123") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _time(node: ast.Call, args: list[Value], frame: _Frame) -> Value:
    if not args:
        return frame.env.now
    if len(args) == 1 and isinstance(args[0], str):
        return frame.env.now if not args[0] else _parse_time(node, args[0])
    raise _fail(node, "time() takes no argument or one string")


def _val(node: ast.Call, args: list[Value], frame: _Frame) -> Value:
    if len(args) != 2:
        raise _fail(node, "val() takes a doubleVec and an index")
    vector = _plain(args[0])
    values = list(vector) if isinstance(vector, Vec) else [_double(node, vector, "val()")]
    index = _double(node, args[1], "val()")
    if not 0 <= index < len(values):
        raise _fail(node, f"val(): index {index:g} is outside the vector of length {len(values)}")
    return values[int(index)]


def _percentile_function(node: ast.Call, args: list[Value], frame: _Frame) -> Value:
    if len(args) != 2:
        raise _fail(node, "percentile() takes a doubleVec and a percentage")
    values = _nonempty(node, _flatten(node, args[:1], "percentile()"), "percentile")
    return _percentile(values, _double(node, args[1], "percentile()"))


def _rand(node: ast.Call, args: list[Value], frame: _Frame) -> Value:
    if args:
        raise _fail(node, "rand() takes no argument")
    return frame.env.rand()


def _stop(node: ast.Call, args: list[Value], frame: _Frame) -> Value:
    raise _Stop


_FUNCTIONS: dict[str, Callable[[ast.Call, list[Value], _Frame], Value]] = {
    "avg": _aggregate(lambda values: sum(values) / len(values)),
    "len": _aggregate(lambda values: float(len(values)), empty_ok=True),
    "count": _aggregate(lambda values: float(len(values)), empty_ok=True),
    "lg": _component_wise(_log(math.log2)),
    "ln": _component_wise(_log(math.log)),
    "log": _component_wise(_log(math.log10)),
    "ceil": _component_wise(lambda value: float(math.ceil(value)) if math.isfinite(value) else value),
    "floor": _component_wise(lambda value: float(math.floor(value)) if math.isfinite(value) else value),
    "round": _component_wise(lambda value: float(math.floor(value + 0.5)) if math.isfinite(value) else value),
    "max": _aggregate(max),
    "min": _aggregate(min),
    "norm": _aggregate(lambda values: math.sqrt(sum(item * item for item in values)), empty_ok=True),
    "percentile": _percentile_function,
    "rand": _rand,
    "range": _aggregate(lambda values: max(values) - min(values)),
    "std": _aggregate(_std),
    "stop": _stop,
    "sum": _aggregate(lambda values: float(sum(values)), empty_ok=True),
    "time": _time,
    "val": _val,
}


# --- sample methods ------------------------------------------------------------------------------------------
def _look_back(node: ast.Node, value: Value, frame: _Frame) -> float:
    """A look-back bound (timeinterval before now, or a timestamp) as a real Unix time."""
    env = frame.env
    if isinstance(value, Interval):
        return env.now.timestamp() - value.seconds / env.time_scale
    if isinstance(value, datetime):
        return value.timestamp()
    raise _fail(node, f"a sample window bound must be a timeinterval or a timestamp, not a {type_name(value)}")


def _insufficient(node: ast.Node, name: str, wanted: float, received: float) -> InsufficientSampleData:
    return InsufficientSampleData(
        f"Insufficient data from data set: {name} wanted {wanted:g}%, received {received:.0f}%", node.line, node.column
    )


def _get_sample(node: ast.MethodCall, metric: Metric, args: list[Value], frame: _Frame) -> Value:
    if len(args) == 1 and isinstance(args[0], float):
        count = int(args[0])
        values = metric.history.latest(metric.name, count)
        if count > 0 and not values:
            raise _insufficient(node, metric.name, 100.0, 0.0)
        return Vec(values)
    if not 1 <= len(args) <= 3:
        raise _fail(node, "GetSample() takes a count, or a window and an optional sample percentage")
    wanted = 0.0
    window = args
    if len(args) >= 2 and isinstance(args[-1], float):
        wanted, window = args[-1], args[:-1]
    values, percent = _window_of(node, metric, window, frame)
    if percent < wanted or not values:
        raise _insufficient(node, metric.name, wanted or 1.0, percent)
    return Vec(values)


def _window_of(node: ast.MethodCall, metric: Metric, window: list[Value], frame: _Frame) -> tuple[list[float], float]:
    if len(window) > 2:
        raise _fail(node, f"{node.name}() takes at most two window bounds")
    now = frame.env.now.timestamp()
    first = _look_back(node, window[0], frame)
    second = _look_back(node, window[1], frame) if len(window) == 2 else now
    start, end = min(first, second), max(first, second)
    values = metric.history.between(metric.name, start, end)
    expected = (end - start) * frame.env.time_scale / SAMPLE_PERIOD_SECONDS
    percent = 100.0 if expected < 1 else min(100.0, 100.0 * len(values) / expected)
    return values, percent


def _get_sample_percent(node: ast.MethodCall, metric: Metric, args: list[Value], frame: _Frame) -> Value:
    if not 1 <= len(args) <= 2:
        raise _fail(node, "GetSamplePercent() takes a window start and an optional end")
    return _window_of(node, metric, args, frame)[1]


def _history_begin(node: ast.MethodCall, metric: Metric, args: list[Value], frame: _Frame) -> Value:
    begin = metric.history.begin_time()
    if begin is None:
        raise _insufficient(node, metric.name, 1.0, 0.0)
    return begin


_METHODS: dict[str, Callable[[ast.MethodCall, Metric, list[Value], _Frame], Value]] = {
    "getsample": _get_sample,
    "getsamplepercent": _get_sample_percent,
    "getsampleperiod": lambda node, metric, args, frame: Interval(SAMPLE_PERIOD_SECONDS),
    "count": lambda node, metric, args, frame: float(metric.history.count()),
    "historybegintime": _history_begin,
}


# --- compiler ------------------------------------------------------------------------------------------------
def _compile_name(node: ast.Name) -> Code:
    lowered = node.name.lower()
    if lowered in _READ_WRITE:
        canonical = _READ_WRITE[lowered]
        return lambda frame: frame.variables[canonical]
    if lowered in _METRICS:
        metric_name = _METRICS[lowered]
        return lambda frame: frame.metric(metric_name)
    if lowered in _INTERVALS:
        constant = _INTERVALS[lowered]
        return lambda frame: constant
    name = node.name
    keyword = lowered if lowered in DEALLOCATION_OPTIONS else None

    def read(frame: _Frame) -> Value:
        value = frame.variables.get(name)
        if value is None:
            if keyword is not None:
                return keyword
            raise FormulaEvaluationError(f"Undefined symbol: {name}", node.line, node.column)
        return value

    return read


def _compile_binary(node: ast.Binary) -> Code:
    left, right = _compile(node.left), _compile(node.right)
    op = node.op
    if op in ("&&", "||"):
        stop_on = 0.0 if op == "&&" else 1.0

        def logical(frame: _Frame) -> Value:
            first = 1.0 if _double(node, left(frame), f"'{op}'") != 0 else 0.0
            if first == stop_on:  # short circuit: false && ..., true || ...
                return first
            return 1.0 if _double(node, right(frame), f"'{op}'") != 0 else 0.0

        return logical
    if op in _COMPARE:
        return lambda frame: _compare(node, _plain(left(frame)), _plain(right(frame)))

    def arithmetic(frame: _Frame) -> Value:
        a, b = _plain(left(frame)), _plain(right(frame))
        if type(a) is float and type(b) is float:  # the common case, without the type rules
            return _ARITHMETIC[op](a, b)
        return _arithmetic(node, a, b)

    return arithmetic


def _compile_unary(node: ast.Unary) -> Code:
    operand = _compile(node.operand)
    if node.op == "!":
        return lambda frame: 0.0 if _double(node, operand(frame), "'!'") else 1.0

    def negate(frame: _Frame) -> Value:
        value = _plain(operand(frame))
        if node.op == "+":
            return value
        if isinstance(value, float):
            return -value
        if isinstance(value, Interval):
            return Interval(-value.seconds)
        if isinstance(value, Vec):
            return Vec(-item for item in value)
        raise _fail(node, f"'-' does not take a {type_name(value)}")

    return negate


def _compile_call(node: ast.Call) -> Code:
    function = _FUNCTIONS.get(node.name.lower())
    if function is None:
        raise FormulaSyntaxError(f"unknown function {node.name}()", node.line, node.column)
    args = [_compile(arg) for arg in node.args]
    return lambda frame: function(node, [arg(frame) for arg in args], frame)


def _compile_method(node: ast.MethodCall) -> Code:
    method = _METHODS.get(node.name.lower())
    if method is None:
        raise FormulaSyntaxError(f"unknown method {node.name}()", node.line, node.column)
    target = _compile(node.target)
    args = [_compile(arg) for arg in node.args]

    def call(frame: _Frame) -> Value:
        metric = target(frame)
        if not isinstance(metric, Metric):
            raise _fail(node, f"{node.name}() is a method of sampled service variables, not of a {type_name(metric)}")
        return method(node, metric, [_plain(arg(frame)) for arg in args], frame)

    return call


def _compile_member(node: ast.Member) -> Code:
    target = _compile(node.target)

    def member(frame: _Frame) -> Value:
        value = _plain(target(frame))
        if isinstance(value, datetime):
            found = timestamp_member(value, node.name)
            if found is not None:
                return found
        raise _fail(node, f"a {type_name(value)} has no member {node.name}")

    return member


def _compile_conditional(node: ast.Conditional) -> Code:
    condition, then, otherwise = _compile(node.condition), _compile(node.then), _compile(node.otherwise)
    return lambda frame: then(frame) if _double(node, condition(frame), "'?:'") != 0 else otherwise(frame)


def _compile_vector(node: ast.Vector) -> Code:
    items = [_compile(item) for item in node.items]
    return lambda frame: Vec(_flatten(node, [item(frame) for item in items], "a vector"))


def _compile_assign(node: ast.Assign) -> Code:
    value = _compile(node.value)
    lowered = node.name.lower()
    if lowered in _METRICS:
        raise FormulaSyntaxError(f"{node.name} is a read-only service variable", node.line, node.column)
    name = _READ_WRITE.get(lowered, node.name)

    def assign(frame: _Frame) -> Value:
        result = _plain(value(frame))  # a variable holds a metric's current value, not its history
        frame.variables[name] = result
        frame.assigned.add(name)
        return result

    return assign


def _compile(node: ast.Node) -> Code:
    """Compile one syntax node into a closure over the evaluation frame."""
    match node:
        case ast.Number(value=number):
            return lambda frame: number
        case ast.String(value=text):
            return lambda frame: text
        case ast.Name():
            return _compile_name(node)
        case ast.Binary():
            return _compile_binary(node)
        case ast.Unary():
            return _compile_unary(node)
        case ast.Conditional():
            return _compile_conditional(node)
        case ast.Call():
            return _compile_call(node)
        case ast.MethodCall():
            return _compile_method(node)
        case ast.Member():
            return _compile_member(node)
        case ast.Vector():
            return _compile_vector(node)
        case ast.Assign():
            return _compile_assign(node)
    raise FormulaSyntaxError(f"unsupported construct {type(node).__name__}", node.line, node.column)


@lru_cache(maxsize=256)
def compile_formula(source: str) -> tuple[Code, ...]:
    """Parse and compile a formula (cached by text).

    Raises:
        FormulaSyntaxError: the formula does not parse, or names an unknown function, method or
            read-only variable it assigns.
    """
    return tuple(_compile(statement) for statement in ast.parse(source).statements)


def check(source: str) -> None:
    """Check that a formula parses and compiles (what enabling autoscale checks).

    Raises:
        FormulaSyntaxError: it does not.
    """
    compile_formula(source)


def _target(frame: _Frame, name: str, alias: str) -> int:
    variables = frame.variables
    chosen = name if name in frame.assigned or alias not in frame.assigned else alias
    value = _plain(variables[chosen])
    if not isinstance(value, float):
        raise InvalidAutoScalingSettings(f"{name} must be a double, not a {type_name(value)}")
    if not math.isfinite(value) or value < 0:
        raise InvalidAutoScalingSettings(f"{name} must be a number of nodes of 0 or more, not {format_value(value)}")
    variables[name] = value
    return int(value)


def evaluate(source: str, env: Environment) -> Evaluation:
    """Run a formula against a pool's environment.

    Args:
        source: The formula text.
        env: The pool's current targets, metrics and time.

    Returns:
        The variables assigned and the targets the pool should move to (truncated to whole nodes).

    Raises:
        FormulaError: a syntax error, a type error, insufficient samples, or unusable targets; its
            ``code`` is the one the service reports.
    """
    program = compile_formula(source)
    frame = _Frame(env)
    frame.variables.update(
        {
            DEDICATED: float(env.target_dedicated),
            LOW_PRIORITY: float(env.target_low_priority),
            DEALLOCATION: "requeue",
            "$TargetDedicated": float(env.target_dedicated),
            "$TargetLowPriority": float(env.target_low_priority),
        }
    )
    try:
        for statement in program:
            statement(frame)
    except _Stop:
        pass
    except RecursionError as error:
        raise FormulaSyntaxError("the formula nests too deeply") from error
    dedicated = _target(frame, DEDICATED, "$TargetDedicated")
    low_priority = _target(frame, LOW_PRIORITY, "$TargetLowPriority")
    option = _plain(frame.variables[DEALLOCATION])
    if not isinstance(option, str) or option.lower() not in DEALLOCATION_OPTIONS:
        raise InvalidAutoScalingSettings(
            f"{DEALLOCATION} must be one of {', '.join(DEALLOCATION_OPTIONS)}, not {format_value(option)}"
        )
    variables = {
        name: value for name, value in frame.variables.items() if name not in _ALIASES or name in frame.assigned
    }
    return Evaluation(variables, dedicated, low_priority, option.lower())


__all__ = ["Environment", "Evaluation", "FormulaError", "check", "evaluate"]
