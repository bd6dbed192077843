"""Why an exchange of a recording may differ: documented differences and operations owned by other issues.

Every difference the replay finds must be explained here, or the conformance test fails. An explanation is
one of:

- ``OTHER_ISSUE``: the local service answers ``501 NotImplemented`` for the operation or feature (job
  schedules, autoscale, auto pools, job preparation/release, task dependencies, exit conditions,
  multi-instance tasks, containers, node operations...). These are being built under issues 13 and 14;
  exchanges that only fail because an earlier one got ``501`` (a job that was never created) count too.
- ``DOCUMENTED``: a difference the local service keeps on purpose, with the reason a user is given in
  docs/emulator.md.
"""

from __future__ import annotations

import re

from tests.conformance.replay import Outcome

OTHER_ISSUE = "issue 13/14"

#: (recording, exchange index) → reason, for differences that are not a 501 of the exchange itself.
DOCUMENTED: dict[tuple[str, int], str] = {
    ("create_pools", 2): (
        "no virtual networks locally: `networkConfiguration.subnetId` is accepted without checking it "
        "against a subscription"
    ),
    ("scale_pools", 2): (
        "timing: the local service evaluates an autoscale formula as soon as autoscale is enabled and shows "
        "`autoScaleRun`; the recorded GET came before the real service's first evaluation"
    ),
    ("files", 3): (
        "Windows pools: tasks run as local processes on this machine, so the Windows command line "
        '`cmd /c "echo hello world"` fails here (`cmd` is not found) where the Windows node ran it'
    ),
    ("files", 4): (
        "Windows pools: a local node keeps a Linux-style layout (`/` separators, no `volatile/startup`), "
        "where a Windows node lists `workitems\\batch\\job-1\\...`"
    ),
    ("files", 8): "Windows pools: local files carry `fileMode` as Linux nodes' files do; Windows nodes leave it out",
    ("compute_nodes", 2): (
        "the recording sanitizes the request's `containerUrl` to `Sanitized`, which the local service refuses "
        "as not a URL (the real service got a SAS URL)"
    ),
    ("scale_pools", 4): (
        "timing: follows from exchange 2 (the formula was evaluated at once, so the pool has nodes, and with them "
        "`currentNodeCommunicationMode`, where the real one had none yet)"
    ),
    ("scale_pools", 7): (
        "timing: the local pool leaves `stopping` at once (nodes not allocated yet are given up), so this poll "
        "already shows the `ResizeStopped` error the real service shows on the next one"
    ),
}

DOCUMENTED[("java_pool_select", 0)] = (
    "a quirk of the real service: it returns a pool's `upgradePolicy` (with the defaults it fills in) even when "
    "`$select` leaves it out; the local service applies `$select` strictly and does not fill in upgrade-policy "
    "defaults (no OS upgrades locally)"
)

_NO_APPLICATIONS = (
    "no application packages locally (docs/emulator.md refuses them): the recorded account had "
    "`dotnotsdkbatchapplication1` uploaded through Azure Resource Manager, which a local account cannot have"
)
DOCUMENTED.update({("net_applications", index): _NO_APPLICATIONS for index in (0, 1)})

_CLOUD_SERVICE = (
    "cloud service pools (`cloudServiceConfiguration`) were retired in February 2024; today's service refuses "
    "them with 400 as the local one does (this 2020 recording predates the retirement)"
)
_AFTER_CLOUD_SERVICE = "follows from the refused cloud service pool: " + _CLOUD_SERVICE
DOCUMENTED.update(
    {("cli_pools_and_nodes", index): _CLOUD_SERVICE for index in (0, 2, 4)}
    | {("cli_pools_and_nodes", index): _AFTER_CLOUD_SERVICE for index in (3, 5, 6, 7, 8)}
)

#: Differences explained by a pattern in the difference text, wherever they occur.
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"autoScale(Formula|EvaluationInterval|Run)|enableAutoScale"),
        f"{OTHER_ISSUE}: autoscale",
    ),
)


def explain(outcome: Outcome, unimplemented_ids: set[str]) -> str | None:
    """The reason for an outcome's differences, or None when they are unexplained.

    Args:
        outcome: One replayed exchange with differences.
        unimplemented_ids: Ids of entities that an earlier exchange of the same recording got ``501`` for.
    """
    exchange = outcome.exchange
    if outcome.status == 501:
        return f"{OTHER_ISSUE}: the local service answers 501 NotImplemented to this {outcome.operation} request"
    if any(f"/{entity}" in exchange.uri.split("?")[0] for entity in unimplemented_ids):
        return f"{OTHER_ISSUE}: follows from an earlier 501 on the same entity"
    documented = DOCUMENTED.get((exchange.recording, exchange.index))
    if documented is not None:
        return documented
    reasons = set()
    for difference in outcome.differences:
        for pattern, reason in PATTERNS:
            if pattern.search(difference):
                reasons.add(reason)
                break
        else:
            return None
    return "; ".join(sorted(reasons)) or None
