"""batchpipe: the Azure Batch "get started" pipeline as a Prefect 3 flow, runnable locally and on Azure."""

__version__ = "0.1.0"
