"""batchpipe's benchmarks: ``python -m bench`` (``make bench``) measures and writes docs/benchmarks.md.

Not tests: nothing here asserts a time. Every benchmark interleaves its baseline and its candidate in the same run.
"""
