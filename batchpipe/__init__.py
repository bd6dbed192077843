"""batchpipe: the Azure Batch "get started" pipeline as a Prefect 3 flow, runnable locally and on Azure.

The Python API (imported on first use, so ``import batchpipe`` stays light)::

    from batchpipe import batch_map

    summary = batch_map(
        inputs=["data/"],
        command="gzip -c {input} > {output_dir}/{input_name}.gz",
        output_patterns=["{input_name}.gz"],
        approval="yes",
    )

``batch_map`` is the general flow (docs/workloads.md); ``top_words_pipeline`` is the tutorial's flow built on it.
The steps are importable on their own from ``tasks`` (see the README's step table).
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["batch_map", "top_words_pipeline"]


def __getattr__(name: str) -> Any:
    if name == "batch_map":
        from flows.batch_map import batch_map

        return batch_map
    if name == "top_words_pipeline":
        from flows.pipeline import top_words_pipeline

        return top_words_pipeline
    raise AttributeError(f"module 'batchpipe' has no attribute {name!r}")
