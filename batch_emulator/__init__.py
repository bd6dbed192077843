"""A local Azure Batch service: the Batch data-plane REST API on 127.0.0.1, driven by the unmodified SDKs.

Entry points: :func:`batch_emulator.server.run_forever` (``python -m batch_emulator``) and
:class:`batch_emulator.server.ThreadedEmulator` for tests. See docs/emulator.md.
"""
