"""batchpipe node application: the top-N words program that runs on each compute node.

Standard library only (Python >= 3.8), shipped as a single reproducible zipapp built by :mod:`node_app.build`.
Run ``python3 <artifact>.pyz --help`` for the command line; exit codes are listed in :mod:`node_app.errors`.
"""

__version__ = "0.1.0"

#: File names of built artifacts start with this: ``<prefix>-<version>-<sha256[:12]>.pyz``.
ARTIFACT_PREFIX = "batchpipe-node-app"
