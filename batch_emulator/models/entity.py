"""What the models share about their entities (pools, jobs, job schedules, tasks): the record of id, state and
times, finding one by id, and the states in which one refuses a change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeVar

from batch_emulator.errors import BatchError
from batch_emulator.models.validation import id_key

E = TypeVar("E")


class Entity:
    """An entity's id (and its case-insensitive key), sequence number, state with its history, and times."""

    __slots__ = (
        "creation_time",
        "id",
        "key",
        "last_modified",
        "prev_state",
        "prev_state_time",
        "seq",
        "state",
        "state_time",
    )

    def __init__(self, entity_id: str, seq: int, now: float) -> None:
        """Create an ``active`` entity made at ``now``."""
        self.id = entity_id
        key = id_key(entity_id)
        self.key = entity_id if key == entity_id else key  # share the string when the id is lower-case
        self.seq = seq
        self.state = "active"
        self.state_time = now
        self.prev_state: str | None = None
        self.prev_state_time: float | None = None
        self.creation_time = now
        self.last_modified = now

    def touch(self, now: float) -> None:
        """Record a modification (changes the ETag)."""
        self.last_modified = max(now, self.last_modified + 1e-6)

    def enter_state(self, state: str, now: float) -> bool:
        """Enter ``state``, remembering the previous one; False (and no change) when already in it."""
        if state == self.state:
            return False
        self.prev_state, self.prev_state_time = self.state, self.state_time
        self.state, self.state_time = state, now
        return True


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
