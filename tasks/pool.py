"""Pool steps: choose the image, create (or reuse) the pool whose start task stages the node application."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from azure.batch import models as batchmodels
from azure.core.exceptions import ResourceExistsError
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from batchpipe.azure_errors import error_code
from batchpipe.clients import batch_client
from batchpipe.errors import ConfigurationError
from batchpipe.naming import wire_text
from batchpipe.pools import CREATED_BY_KEY, CREATED_BY_VALUE
from batchpipe.settings import Settings
from tasks._common import AZURE_RETRIES, FIRST_CONTACT, azure_call, run_logger

NODE_APP_KEY = "batchpipe-node-app"


@dataclass(frozen=True)
class ImageChoice:
    """A marketplace image and the node agent SKU that goes with it."""

    publisher: str
    offer: str
    sku: str
    version: str
    node_agent_sku_id: str

    def describe(self) -> str:
        return f"{self.publisher}/{self.offer}/{self.sku} ({self.node_agent_sku_id})"


def image_label(node_agent_sku_id: str) -> str:
    """``distro:version`` (what ``BATCHPIPE_IMAGE`` takes) from a node agent SKU such as ``batch.node.ubuntu 22.04``
    (an architecture after the version, as in ``batch.node.ubuntu 22.04 arm64``, is left out: it is not chosen)."""
    distro, _, version = node_agent_sku_id.removeprefix("batch.node.").partition(" ")
    version = version.split(" ")[0]
    return f"{distro}:{version}" if version else node_agent_sku_id


def choose_image(images: Iterable[Any], image: str) -> ImageChoice:
    """Pick the supported Linux image for ``<distro>:<version>``, like the tutorial's distro lookup.

    Args:
        images: supported images (``BatchSupportedImage`` models or dicts of the same wire shape).
        image: e.g. ``ubuntu:22.04``.

    Returns:
        The best match: verified before unverified, x86-64 before Arm64 and Generation 1 before Generation 2
        (they run on every VM size the image supports), then the newest SKU.

    Raises:
        ConfigurationError: no supported image matches; the message lists the ones that exist.
    """
    distro, _, version = image.lower().partition(":")
    version_forms = {version, version.replace(".", "_"), version.replace(".", "-")}
    candidates, available = [], []
    for item in images:
        # SDK models are mappings keyed by wire names, like the dicts: one way to read both.
        reference = item.get("imageReference") or {}
        os_type = wire_text(item.get("osType"))
        publisher, offer, sku = (str(reference.get(k) or "") for k in ("publisher", "offer", "sku"))
        agent = str(item.get("nodeAgentSKUId") or "")
        if os_type != "linux":
            continue
        available.append(image_label(agent))
        names = f"{publisher} {offer} {sku} {agent}".lower()
        where = f"{offer} {sku} {agent}".lower()
        if distro in names and any(form in where for form in version_forms):
            verified = wire_text(item.get("verificationType")) == "verified"
            choice = ImageChoice(publisher, offer, sku, str(reference.get("version") or "latest"), agent)
            lowered = sku.lower()
            candidates.append(((verified, "arm64" not in lowered, "gen2" not in lowered), sku, choice))
    if not candidates:
        shown = ", ".join(sorted(set(available))) or "none"
        raise ConfigurationError(
            f"no supported Linux image matches BATCHPIPE_IMAGE={image!r}; the service offers: {shown} "
            "(set BATCHPIPE_IMAGE to one of them)"
        )
    return max(candidates, key=lambda c: (c[0], c[1]))[2]


@task(name="list-images", cache_policy=NO_CACHE, **AZURE_RETRIES)
def list_images(settings: Settings) -> list[dict[str, Any]]:
    """List the service's supported Linux images (the pre-flight's first contact with Batch).

    Args:
        settings: the run's settings.

    Returns:
        The supported images, as dicts of the wire shape :func:`choose_image` reads.

    Raises:
        CloudError: Batch refused, or its endpoint cannot be reached (no retries: this is the pre-flight).
    """
    with azure_call("Batch", "listing supported images", first_contact=True):
        images = batch_client(settings).list_supported_images(filter="osType eq 'linux'", **FIRST_CONTACT)
        return [image.as_dict() for image in images]


def find_image(settings: Settings) -> ImageChoice:
    """The configured image among the service's: the listing is a step (retried), the choice a plain call, so an
    unsupported ``BATCHPIPE_IMAGE`` is no step's failure and the flow run reports it once, as its final state.

    Args:
        settings: the run's settings (``image``).

    Returns:
        The chosen image.

    Raises:
        ConfigurationError: nothing matches; the message lists what the service offers.
        CloudError: as :func:`list_images`.
    """
    choice = choose_image(list_images(settings), settings.image)
    run_logger().info("Image for %s: %s", settings.image, choice.describe())
    return choice


def start_task_command(artifact_name: str) -> str:
    """The start task: stage the node application in the shared directory and check that it runs."""
    artifact = shlex.quote(artifact_name)
    script = (
        f'cp "$AZ_BATCH_TASK_WORKING_DIR"/{artifact} "$AZ_BATCH_NODE_SHARED_DIR"/ && '
        f'python3 "$AZ_BATCH_NODE_SHARED_DIR"/{artifact} --version'
    )
    return f"/bin/sh -c {shlex.quote(script)}"


def pool_definition(
    settings: Settings,
    image: ImageChoice,
    artifact_name: str | None,
    artifact_url: str | None,
    *,
    start_command: str | None = None,
    container_image: str | None = None,
) -> batchmodels.BatchPoolCreateOptions:
    """The pool we create: size, image, start task staging the application (none without an artifact).

    Args:
        settings: the run's settings (VM size, node count, Spot, task slots).
        image: the chosen image.
        artifact_name: the staged application's blob name (None: nothing to stage).
        artifact_url: read-only SAS URL of that blob.
        start_command: the start task's command (default: the node application's, see :func:`start_task_command`).
        container_image: a container image the nodes pre-fetch (tasks then run in it).

    Returns:
        The pool definition.
    """
    dedicated = 0 if settings.use_spot_nodes else settings.node_count
    spot = settings.node_count if settings.use_spot_nodes else 0
    start_task = None
    if artifact_name is not None and artifact_url is not None:
        start_task = batchmodels.BatchStartTask(
            command_line=start_command or start_task_command(artifact_name),
            resource_files=[batchmodels.ResourceFile(http_url=artifact_url, file_path=artifact_name)],
            wait_for_success=True,
            max_task_retry_count=1,
            user_identity=batchmodels.UserIdentity(
                auto_user=batchmodels.AutoUserSpecification(scope="pool", elevation_level="nonadmin")
            ),
        )
    containers = None
    if container_image:
        containers = batchmodels.BatchContainerConfiguration(
            type="dockerCompatible", container_image_names=[container_image]
        )
    return batchmodels.BatchPoolCreateOptions(
        id=settings.pool_id,
        vm_size=settings.vm_size,
        virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
            image_reference=batchmodels.BatchVmImageReference(
                publisher=image.publisher, offer=image.offer, sku=image.sku, version=image.version
            ),
            node_agent_sku_id=image.node_agent_sku_id,
            container_configuration=containers,
        ),
        target_dedicated_nodes=dedicated,
        target_low_priority_nodes=spot,
        task_slots_per_node=settings.task_slots_per_node,
        start_task=start_task,
        metadata=[
            batchmodels.BatchMetadataItem(name=CREATED_BY_KEY, value=CREATED_BY_VALUE),
            batchmodels.BatchMetadataItem(
                name=NODE_APP_KEY,
                value=artifact_name or (f"container {container_image}" if container_image else "none"),
            ),
        ],
    )


def incompatibilities(existing: Any, wanted: batchmodels.BatchPoolCreateOptions) -> list[str]:
    """What makes an existing pool unusable for this run (empty when it can be reused)."""
    problems = []
    if wire_text(existing.state) == "deleting":
        problems.append("it is being deleted (wait for it to go, then rerun)")
    if str(existing.vm_size or "").lower() != str(wanted.vm_size).lower():
        problems.append(f"its VM size is {existing.vm_size}, this run wants {wanted.vm_size}")
    have = existing.virtual_machine_configuration
    want = wanted.virtual_machine_configuration
    if have is not None and want is not None:
        have_ref, want_ref = have.image_reference, want.image_reference
        for field in ("publisher", "offer", "sku"):
            if str(getattr(have_ref, field, "")).lower() != str(getattr(want_ref, field, "")).lower():
                problems.append(
                    f"its image {field} is {getattr(have_ref, field, None)}, this run wants "
                    f"{getattr(want_ref, field, None)}"
                )
    metadata = {item.name: item.value for item in existing.metadata or []}
    wanted_app = next(item.value for item in wanted.metadata or [] if item.name == NODE_APP_KEY)
    if metadata.get(NODE_APP_KEY) != wanted_app:
        problems.append(
            f"its nodes run node app {metadata.get(NODE_APP_KEY) or 'unknown'}, this run needs {wanted_app}"
        )
    return problems


@task(name="create-pool", cache_policy=NO_CACHE, **AZURE_RETRIES)
def ensure_pool(
    settings: Settings,
    image: ImageChoice,
    artifact_name: str | None,
    artifact_url: str | None,
    start_command: str | None = None,
    container_image: str | None = None,
) -> dict[str, Any]:
    """Create the pool, or reuse an existing compatible one.

    Args:
        settings: the run's settings (pool id, VM size, node count).
        image: the chosen image.
        artifact_name: the staged application's file name (None: nothing to stage).
        artifact_url: read-only SAS URL of the application blob.
        start_command: the start task's command (default: the node application's).
        container_image: a container image for the nodes (tasks run in it).

    Returns:
        ``{"pool_id", "created"}``.

    Raises:
        ConfigurationError: a pool with this id exists but cannot be used; says what differs.
        CloudError: Batch refused (quota, invalid VM size, ...).
    """
    logger = get_run_logger()
    client = batch_client(settings)
    wanted = pool_definition(
        settings, image, artifact_name, artifact_url, start_command=start_command, container_image=container_image
    )
    with azure_call("Batch", f"creating pool {settings.pool_id!r}"):
        try:
            client.create_pool(wanted)
            logger.info(
                "Created pool %s: %d x %s, %s",
                settings.pool_id,
                settings.node_count,
                settings.vm_size,
                image.describe(),
            )
            return {"pool_id": settings.pool_id, "created": True}
        except ResourceExistsError as error:
            if error_code(error) not in (None, "PoolExists"):
                raise  # another 409, e.g. PoolQuotaReached: not about this pool
            existing = client.get_pool(settings.pool_id)
    problems = incompatibilities(existing, wanted)
    if problems:
        raise ConfigurationError(
            f"pool {settings.pool_id!r} exists but cannot be reused: {'; '.join(problems)}. "
            "Delete it (batchpipe pools delete) or set BATCHPIPE_POOL_ID to another id"
        )
    if wanted.start_task is not None:
        # The pool was made by an earlier run: its start task holds that run's SAS URL, which may have expired or
        # point at an application blob that storage lost (Azurite killed before it persisted). Nodes that join or
        # reboot from now on run this run's start task.
        with azure_call("Batch", f"updating the start task of pool {settings.pool_id!r}"):
            client.update_pool(settings.pool_id, batchmodels.BatchPoolUpdateOptions(start_task=wanted.start_task))
    logger.info("Reusing existing pool %s", settings.pool_id)
    return {"pool_id": settings.pool_id, "created": False}


#: Node states in which a node runs no task until its start task succeeds again (a reboot reruns it).
START_TASK_FAILED_STATES = frozenset({"starttaskfailed"})


@task(name="reboot-failed-nodes", cache_policy=NO_CACHE, **AZURE_RETRIES)
def reboot_failed_nodes(settings: Settings, pool_id: str) -> list[str]:
    """Reboot the nodes of a reused pool whose start task failed, so they run the (refreshed) start task again.

    A start task fails for reasons a rerun can mend: the application blob was lost and has been staged again, or
    its SAS URL expired and the pool now has a fresh one. Without a reboot such a node never runs a task.

    Args:
        settings: the run's settings.
        pool_id: the pool.

    Returns:
        The ids of the nodes rebooted (empty when every node is usable).

    Raises:
        CloudError: Batch refused.
    """
    logger = get_run_logger()
    client = batch_client(settings)
    with azure_call("Batch", f"listing the nodes of pool {pool_id!r}"):
        failed = [
            node.id
            for node in client.list_nodes(pool_id, select=["id", "state"])
            if wire_text(node.state) in START_TASK_FAILED_STATES
        ]
    # azure-batch 15 sends no content type without options, and its options model is not exported.
    options = batchmodels._models.BatchNodeRebootOptions(node_reboot_kind="requeue")
    pollers = []
    for node_id in failed:  # all at once, then wait for each to leave `rebooting` (its start task then runs)
        with azure_call("Batch", f"rebooting node {node_id!r} of pool {pool_id!r}"):
            try:
                pollers.append(
                    client.begin_reboot_node(
                        pool_id, node_id, options, polling_interval=max(1, int(settings.poll_interval))
                    )
                )
            except ResourceExistsError as error:
                if error_code(error) not in ("NodeBeingRebooted", "NodeBeingReimaged"):  # already restarting
                    raise
    for poller in pollers:
        with azure_call("Batch", f"waiting for the nodes of pool {pool_id!r} to reboot"):
            poller.result(timeout=settings.monitor_timeout)
    if failed:
        logger.info(
            "Pool %s: rebooted %d node(s) whose start task had failed, to run it again: %s",
            pool_id,
            len(failed),
            ", ".join(failed),
        )
    return failed
