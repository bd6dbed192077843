"""Errors of the formula language, carrying the service's ``autoScaleRun.error`` code and a position."""

from __future__ import annotations

from typing import ClassVar


class FormulaError(Exception):
    """A formula that cannot be parsed or evaluated; ``code`` is the Batch error code."""

    code: ClassVar[str] = "AutoScalingFormulaSyntaxError"
    summary: ClassVar[str] = "The specified auto-scaling formula has a syntax error."

    def __init__(self, detail: str, line: int = 0, column: int = 0) -> None:
        """Create the error.

        Args:
            detail: What is wrong, for the ``Message`` value.
            line: 1-based line of the offending token (0 when unknown).
            column: 1-based column of the offending token.
        """
        self.detail = detail
        self.line = line
        self.column = column
        super().__init__(self.message_value)

    @property
    def message_value(self) -> str:
        """``Line L, Col C: detail`` as the service writes it."""
        return f"Line {self.line}, Col {self.column}: {self.detail}" if self.line else self.detail


class FormulaSyntaxError(FormulaError):
    """The text is not a formula, or names an unknown function, variable or member."""


class FormulaTypeError(FormulaError):
    """An operator or function got values of types it does not take."""


class FormulaEvaluationError(FormulaError):
    """The formula parsed but failed while running (a variable read before any assignment: ``Undefined symbol``)."""

    code = "AutoScalingFormulaEvaluationError"
    summary = "The specified auto-scaling formula has evaluation error"


class InsufficientSampleData(FormulaError):
    """A metric has fewer samples than the formula asked for."""

    code = "InsufficientSampleData"
    summary = "Autoscale evaluation failed due to insufficient sample data"


class InvalidAutoScalingSettings(FormulaError):
    """The formula ran, but its targets are not usable (negative, not a number, unknown option)."""

    code = "InvalidAutoScalingSettings"
    summary = "The specified auto-scaling settings are not valid."
