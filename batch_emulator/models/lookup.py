"""What the models share about entities: finding one by id, and the states in which one refuses a change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeVar

from batch_emulator.errors import BatchError
from batch_emulator.models.validation import id_key

E = TypeVar("E")


class Stateful(Protocol):
    """An entity with a state (``active``, ``terminating``, ``deleting``...)."""

    @property
    def state(self) -> str:
        """The entity's current state."""
        ...


def find(table: Mapping[str, E], entity_id: str, missing: type[BatchError]) -> E:
    """Return the entity of ``table`` with id ``entity_id`` (ids compare case-insensitively).

    Raises:
        BatchError: ``missing`` (e.g. ``PoolNotFound``) when there is no such entity.
    """
    entity = table.get(id_key(entity_id))
    if entity is None:
        raise missing()
    return entity


def refuse_in_state(entity: Stateful, refusals: Mapping[str, type[BatchError]]) -> None:
    """Raise the error ``refusals`` names for the entity's state (e.g. ``JobBeingDeleted`` for ``deleting``).

    Raises:
        BatchError: the refusal of the entity's state; nothing when its state has none.
    """
    refusal = refusals.get(entity.state)
    if refusal is not None:
        raise refusal()
