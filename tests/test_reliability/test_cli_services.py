"""Commands run next to a running stack (`. .batchpipe/stack.env`): `plan --check` and `pools list/prune` use its
services, and say so."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from azure.batch import models as batchmodels

from batchpipe.pools import CREATED_BY_KEY, CREATED_BY_VALUE

pytestmark = [pytest.mark.integration]


def _stack_env(azure_target: tuple[dict[str, str], Any]) -> dict[str, str]:
    """What `. .batchpipe/stack.env` sets: the local target with the running services' endpoints."""
    env, _ = azure_target
    return env | {"BATCHPIPE_TARGET": "local"}


@pytest.mark.scenario(
    "Bad input",
    "`batchpipe plan --check` next to a running stack (its stack.env loaded), the image found",
    "exit 0: the plan and `pre-flight: image ... ok` (it used to crash with MissingContextError outside a flow run)",
)
def test_plan_check_finds_the_image_on_the_running_services(
    cli: Any, azure_target: tuple[dict[str, str], Any], observe: Callable[[str], None]
) -> None:
    (cli.workdir / "a.txt").write_text("alpha beta\n", "utf-8")
    result = cli.run("plan", "--check", "--input", "a.txt", env=_stack_env(azure_target))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "pre-flight" in line)
    image = r"canonical/0001-com-ubuntu-server-jammy/22_04-lts \(batch\.node\.ubuntu 22\.04\)"
    assert re.fullmatch(rf"\s*pre-flight: image ubuntu:22\.04 -> {image} ok", line), line
    assert "Using the running local services at http://127.0.0.1:" in result.stderr
    assert not (cli.workdir / ".batchpipe").exists()  # no services of its own
    observe(f"exit 0: `{line.strip()}`; the running services were used (no services of its own)")


@pytest.mark.scenario(
    "Bad input",
    "`batchpipe pools list` and `pools prune --idle 0s --yes` next to a running stack, which has a batchpipe pool",
    "both see the stack's pool (VM size, idle time as a duration) and prune deletes it",
)
def test_pools_list_and_prune_use_the_running_services(
    cli: Any, azure_target: tuple[dict[str, str], Any], observe: Callable[[str], None]
) -> None:
    _, inspect = azure_target
    inspect.batch.create_pool(
        batchmodels.BatchPoolCreateOptions(
            id=inspect.pool_id,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
                image_reference=batchmodels.BatchVmImageReference(
                    publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
                ),
                node_agent_sku_id="batch.node.ubuntu 22.04",
            ),
            target_dedicated_nodes=0,
            metadata=[batchmodels.BatchMetadataItem(name=CREATED_BY_KEY, value=CREATED_BY_VALUE)],
        )
    )
    listed = cli.run("pools", "list", env=_stack_env(azure_target))
    assert listed.returncode == 0, listed.stderr[-2000:]
    row = next(line for line in listed.stdout.splitlines() if inspect.pool_id in line)
    cells = [cell.strip() for cell in row.strip("│ \n").split("│")]
    assert cells[:4] == [inspect.pool_id, "active", "standard_d2s_v3", "0"], cells
    assert re.fullmatch(r"\d+s|\d+m( \d+s)?", cells[4]), cells  # idle for: a duration
    pruned = cli.run("pools", "prune", "--idle", "0s", "--yes", env=_stack_env(azure_target))
    assert pruned.returncode == 0, pruned.stderr[-2000:]
    assert f"Deleted pool {inspect.pool_id}" in pruned.stdout
    assert not inspect.pool_exists()
    observe(f"list: `{' | '.join(cells)}`; prune: `Deleted pool {inspect.pool_id}`")


@pytest.mark.scenario(
    "Bad input",
    "a misspelled variable (`BATCHPIPE_NODE_COUNTS=2`)",
    "a warning naming the closest setting (`BATCHPIPE_NODE_COUNT`), once; the command still runs",
)
def test_a_misspelled_variable_is_warned_about(cli: Any, observe: Callable[[str], None]) -> None:
    (cli.workdir / "a.txt").write_text("alpha beta\n", "utf-8")
    result = cli.run("plan", "--input", "a.txt", env={"BATCHPIPE_NODE_COUNTS": "2"})
    assert result.returncode == 0, result.stderr
    warning = (
        "warning: BATCHPIPE_NODE_COUNTS is not a batchpipe setting and is ignored (did you mean BATCHPIPE_NODE_COUNT?)"
    )
    assert result.stderr.count(warning) == 1, result.stderr
    assert "1 x standard_d2s_v3" in result.stdout  # the misspelled value did not apply
    observe(f"`{warning}` (once); plan exit 0 with 1 node")
