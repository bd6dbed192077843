"""The Azure Batch autoscale formula language: lexer, parser and evaluator (no HTTP, no service state).

Use :func:`batch_emulator.autoscale.parser.parse` to check a formula and
:func:`batch_emulator.autoscale.evaluator.evaluate` to run it against a :class:`~.evaluator.Environment`.
"""
