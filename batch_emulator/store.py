"""SQLite persistence of one account (WAL): pools, nodes, jobs and tasks survive a restart.

Writes go through :meth:`Store.flush`, which saves everything in the account's change log in one
transaction. Creates and deletes flush before their HTTP answer; the scheduler's many state changes
are flushed in batches by a background thread. On load, tasks that were preparing or running are
requeued (their processes died with the service), as Batch requeues tasks after a node reboot.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from batch_emulator.models import dependencies
from batch_emulator.models.account import Account, ChangeLog
from batch_emulator.models.jobs import Job
from batch_emulator.models.node_users import NodeUser
from batch_emulator.models.nodes import Node
from batch_emulator.models.pools import Pool
from batch_emulator.models.schedules import Schedule
from batch_emulator.models.tasks import Task, shared_failure
from batch_emulator.usage import NO_USAGE, Usage

_log = logging.getLogger("batch_emulator.store")
_COMPACT = (",", ":")
SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pools (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    pool_key TEXT NOT NULL, node_id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (pool_key, node_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schedules (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    job_key TEXT NOT NULL, task_key TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, spec TEXT NOT NULL,
    rt TEXT NOT NULL,
    PRIMARY KEY (job_key, task_key)
) WITHOUT ROWID;
"""
_TASK_FIELDS = (
    ("state", "st"),
    ("state_time", "t"),
    ("prev_state", "ps"),
    ("prev_state_time", "pt"),
    ("creation_time", "c"),
    ("last_modified", "m"),
    ("start_time", "s"),
    ("end_time", "e"),
    ("exit_code", "x"),
    ("result", "r"),
    ("failure_info", "f"),
    ("retry_count", "rc"),
    ("requeue_count", "qc"),
    ("last_retry_time", "lr"),
    ("last_requeue_time", "lq"),
    ("node_id", "n"),
    ("pool_id", "p"),
)


def _pool_doc(pool: Pool) -> str:
    return json.dumps(
        {
            "id": pool.id,
            "spec": pool.spec,
            "cores": pool.cores_per_node,
            "state": pool.state,
            "stateTime": pool.state_time,
            "allocationState": pool.allocation_state,
            "allocationTime": pool.allocation_time,
            "targetDedicated": pool.target_dedicated,
            "targetLowPriority": pool.target_low_priority,
            "deallocationOption": pool.deallocation_option,
            "resizeErrors": pool.resize_errors,
            "creationTime": pool.creation_time,
            "lastModified": pool.last_modified,
            "nodeCounter": pool.node_counter,
            "autoScaleRun": pool.autoscale_run,
        },
        separators=_COMPACT,
    )


def _node_doc(node: Node) -> str:
    return json.dumps(
        {
            "id": node.id,
            "seq": node.seq,
            "dedicated": node.is_dedicated,
            "ip": node.ip_address,
            "state": node.state,
            "stateTime": node.state_time,
            "allocationTime": node.allocation_time,
            "lastBootTime": node.last_boot_time,
            "totalRun": node.total_tasks_run,
            "totalSucceeded": node.total_tasks_succeeded,
            "startTaskInfo": node.start_task_info,
            "errors": node.errors,
            "removing": node.removing,
            "number": node.number,
            "schedulingState": node.scheduling_state,
            "users": [user.to_doc() for user in node.users.values()],
        },
        separators=_COMPACT,
    )


def _job_doc(job: Job) -> str:
    return json.dumps(
        {
            "id": job.id,
            "spec": job.spec,
            "state": job.state,
            "stateTime": job.state_time,
            "prevState": job.prev_state,
            "prevStateTime": job.prev_state_time,
            "creationTime": job.creation_time,
            "lastModified": job.last_modified,
            "endTime": job.end_time,
            "terminateReason": job.terminate_reason,
            "disableOption": job.disable_option,
            "taskSeq": job.task_seq,
            "autoPoolId": job.auto_pool_id,
            "schedulingError": job.scheduling_error,
        },
        separators=_COMPACT,
    )


_SCHEDULE_FIELDS = (
    ("state", "state"),
    ("state_time", "stateTime"),
    ("prev_state", "prevState"),
    ("prev_state_time", "prevStateTime"),
    ("creation_time", "creationTime"),
    ("last_modified", "lastModified"),
    ("end_time", "endTime"),
    ("job_counter", "jobCounter"),
    ("job_keys", "jobKeys"),
    ("last_due", "lastDue"),
    ("next_run", "nextRun"),
)
_SCHEDULE_OPTIONAL = (("auto_pool_id", "autoPoolId"),)  # fields newer than the first saved schedules


def _schedule_doc(schedule: Schedule) -> str:
    doc = {"id": schedule.id, "spec": schedule.spec}
    doc.update({short: getattr(schedule, name) for name, short in _SCHEDULE_FIELDS + _SCHEDULE_OPTIONAL})
    return json.dumps(doc, separators=_COMPACT)


def _load_schedule(account: Account, doc: dict[str, Any]) -> Schedule:
    schedule = Schedule(doc["id"], doc["spec"], account.next_seq(), doc["creationTime"])
    for name, short in _SCHEDULE_FIELDS:
        setattr(schedule, name, doc[short])
    for name, short in _SCHEDULE_OPTIONAL:
        setattr(schedule, name, doc.get(short))
    return schedule


def _task_rt(task: Task) -> str:
    doc = {short: getattr(task, name) for name, short in _TASK_FIELDS}
    if task.usage is not NO_USAGE:
        doc["u"] = task.usage.to_list()
    return json.dumps({key: value for key, value in doc.items() if value is not None}, separators=_COMPACT)


class Store:
    """The SQLite file of one account."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the database.

        Args:
            path: The SQLite file; its directory is created if needed.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def flush(self, account: Account) -> int:
        """Save everything in the account's change log in one transaction.

        Args:
            account: The account whose changes to save.

        Returns:
            How many rows were written or deleted.
        """
        with self._lock:
            with account.lock:
                changes, account.changes = account.changes, ChangeLog()
                if not changes:
                    return 0
                rows = self._rows(changes)
                schedules = [(s.key, s.seq, _schedule_doc(s)) for s in changes.schedules if not s.removed]
            try:
                return self._write(changes.removals, *rows, schedules=schedules)
            except Exception:
                with account.lock:  # keep the changes for the next attempt
                    pending = account.changes
                    pending.pools |= changes.pools
                    pending.nodes |= changes.nodes
                    pending.jobs |= changes.jobs
                    pending.tasks |= changes.tasks
                    pending.schedules |= changes.schedules
                    pending.removals[:0] = changes.removals
                raise

    @staticmethod
    def _rows(
        changes: ChangeLog,
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        pools = [(p.key, p.seq, _pool_doc(p)) for p in changes.pools if not p.removed]
        nodes = [(n.pool.key, n.id, _node_doc(n)) for n in changes.nodes if not n.removed and not n.pool.removed]
        jobs = [(j.key, j.seq, _job_doc(j)) for j in changes.jobs if not j.removed]
        tasks = [
            (t.job.key, t.key, t.seq, t.id, t.spec, _task_rt(t))
            for t in changes.tasks
            if not t.removed and not t.job.removed
        ]
        return pools, nodes, jobs, tasks

    def _write(
        self,
        removals: list[tuple[str, ...]],
        pools: list[tuple[Any, ...]],
        nodes: list[tuple[Any, ...]],
        jobs: list[tuple[Any, ...]],
        tasks: list[tuple[Any, ...]],
        *,
        schedules: list[tuple[Any, ...]],
    ) -> int:
        db = self._db
        db.execute("BEGIN")
        try:
            for removal in removals:  # removals first: a re-created id is then saved afresh
                kind, *keys = removal
                if kind == "pool":
                    db.execute("DELETE FROM pools WHERE key = ?", keys)
                    db.execute("DELETE FROM nodes WHERE pool_key = ?", keys)
                elif kind == "node":
                    db.execute("DELETE FROM nodes WHERE pool_key = ? AND node_id = ?", keys)
                elif kind == "job":
                    db.execute("DELETE FROM jobs WHERE key = ?", keys)
                    db.execute("DELETE FROM tasks WHERE job_key = ?", keys)
                elif kind == "task":
                    db.execute("DELETE FROM tasks WHERE job_key = ? AND task_key = ?", keys)
                elif kind == "schedule":
                    db.execute("DELETE FROM schedules WHERE key = ?", keys)
            db.executemany("INSERT OR REPLACE INTO pools VALUES (?, ?, ?)", pools)
            db.executemany("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?)", nodes)
            db.executemany("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)", jobs)
            db.executemany("INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?)", tasks)
            db.executemany("INSERT OR REPLACE INTO schedules VALUES (?, ?, ?)", schedules)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(removals) + len(pools) + len(nodes) + len(jobs) + len(tasks) + len(schedules)

    def clear(self) -> None:
        """Delete all saved state."""
        with self._lock:
            self._db.executescript(
                "BEGIN; DELETE FROM pools; DELETE FROM nodes; DELETE FROM jobs; DELETE FROM tasks; "
                "DELETE FROM schedules; COMMIT;"
            )

    def load(self, account: Account, now: float) -> None:
        """Rebuild an account from the database.

        Tasks that were preparing or running go back to ``active`` (requeue count +1); nodes that
        were busy come back ``idle``; nodes that were still starting start again.

        Args:
            account: An empty account.
            now: Current time (for the state changes above).
        """
        with self._lock, account.lock:
            for (doc,) in self._db.execute("SELECT doc FROM pools ORDER BY seq"):
                pool = _load_pool(account, json.loads(doc))
                account.pools[pool.key] = pool
                account.pending_pools.add(pool)
            for pool_key, doc in self._db.execute("SELECT pool_key, doc FROM nodes"):
                owner = account.pools.get(pool_key)
                if owner is not None:
                    node = _load_node(owner, json.loads(doc), now)
                    owner.nodes[node.id] = node
            for pool in account.pools.values():
                pool.nodes = dict(sorted(pool.nodes.items(), key=lambda item: item[1].seq))
            for (doc,) in self._db.execute("SELECT doc FROM jobs ORDER BY seq"):
                job = _load_job(account, json.loads(doc))
                account.jobs[job.key] = job
                account.pending_jobs.add(job)
            for (doc,) in self._db.execute("SELECT doc FROM schedules ORDER BY seq"):
                schedule = _load_schedule(account, json.loads(doc))
                account.schedules[schedule.key] = schedule
            requeued = 0
            for job_key, seq, task_id, spec, rt in self._db.execute(
                "SELECT job_key, seq, id, spec, rt FROM tasks ORDER BY job_key, seq"
            ):
                job_owner = account.jobs.get(job_key)
                if job_owner is not None:
                    requeued += _load_task(job_owner, task_id, seq, spec, json.loads(rt), now)
            for job in account.jobs.values():
                dependencies.rebuild(job)
            _log.info(
                "loaded %d pools, %d jobs, %d tasks (%d requeued) from %s",
                len(account.pools),
                len(account.jobs),
                sum(len(job.tasks) for job in account.jobs.values()),
                requeued,
                self.path,
            )


def _load_pool(account: Account, doc: dict[str, Any]) -> Pool:
    pool = Pool(doc["id"], doc["spec"], account.next_seq(), int(doc["cores"]), doc["creationTime"])
    pool.state = doc["state"]
    pool.state_time = doc["stateTime"]
    pool.allocation_state = doc["allocationState"]
    pool.allocation_time = doc["allocationTime"]
    pool.target_dedicated = doc["targetDedicated"]
    pool.target_low_priority = doc["targetLowPriority"]
    pool.deallocation_option = doc["deallocationOption"]
    pool.resize_errors = doc["resizeErrors"]
    pool.last_modified = doc["lastModified"]
    pool.node_counter = doc["nodeCounter"]
    pool.autoscale_run = doc.get("autoScaleRun")
    return pool


def _load_node(pool: Pool, doc: dict[str, Any], now: float) -> Node:
    node = Node(doc["id"], pool, doc["seq"], dedicated=doc["dedicated"], ip_address=doc["ip"], now=now)
    node.state = doc["state"]
    node.state_time = doc["stateTime"]
    node.allocation_time = doc["allocationTime"]
    node.last_boot_time = doc["lastBootTime"]
    node.total_tasks_run = doc["totalRun"]
    node.total_tasks_succeeded = doc["totalSucceeded"]
    node.start_task_info = doc["startTaskInfo"]
    node.errors = doc["errors"]
    node.removing = doc["removing"]
    node.number = int(doc.get("number", 0))
    node.scheduling_state = doc.get("schedulingState", "enabled")
    node.users = {str(item["name"]).lower(): NodeUser.from_doc(item) for item in doc.get("users", [])}
    if node.state == "running":
        node.state, node.state_time = "idle", now
    return node


def _load_job(account: Account, doc: dict[str, Any]) -> Job:
    job = Job(account, doc["id"], doc["spec"], account.next_seq(), doc["creationTime"])
    job.state = doc["state"]
    job.state_time = doc["stateTime"]
    job.prev_state = doc["prevState"]
    job.prev_state_time = doc["prevStateTime"]
    job.last_modified = doc["lastModified"]
    job.end_time = doc["endTime"]
    job.terminate_reason = doc["terminateReason"]
    job.disable_option = doc["disableOption"]
    job.task_seq = doc["taskSeq"]
    job.auto_pool_id = doc.get("autoPoolId")
    job.scheduling_error = doc.get("schedulingError")
    return job


def _load_task(job: Job, task_id: str, seq: int, spec: str, rt: dict[str, Any], now: float) -> int:
    task = Task(job, task_id, seq, spec, rt["c"])
    for name, short in _TASK_FIELDS:
        if short in rt:
            setattr(task, name, rt[short])
    if task.failure_info is not None:
        task.failure_info = shared_failure(task.failure_info)
    if "u" in rt:
        task.usage = Usage.from_list(rt["u"])
    task.apply_limits(task.body())
    requeued = 0
    if task.state in ("preparing", "running"):
        task.state, task.prev_state, task.prev_state_time = "active", task.state, task.state_time
        task.state_time = now
        task.requeue_count += 1
        task.last_requeue_time = now
        task.last_modified = now
        job.account.changes.tasks.add(task)
        requeued = 1
    job.tasks[task.key] = task
    job.count(task, 1)
    if task.state == "active":
        job.queue.append(task)
    job.task_seq = max(job.task_seq, seq)
    return requeued
