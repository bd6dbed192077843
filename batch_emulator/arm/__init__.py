"""The Batch management plane (Azure Resource Manager, ``Microsoft.Batch``) of the local Batch service.

Routes under ``/subscriptions/{sub}/...`` answer like ``management.azure.com`` for the one account this service
serves: the account (quotas, keys), its pools (the same pools the data plane sees, translated by
:mod:`batch_emulator.arm.translate`), and per-location quotas, VM SKUs and name checks.
"""
