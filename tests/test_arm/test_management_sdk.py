"""The management plane of the local Batch service, driven by the unmodified azure-mgmt-batch client."""

from __future__ import annotations

import ssl
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch import models as arm_models

from batch_emulator.server import ThreadedEmulator
from batchpipe.local_identity import LocalDevelopmentCredential, LocalTls
from tests.polling import wait_until

ACCOUNT = "localbatch"
#: Any resource group works: the local service's one account is in every subscription and resource group.
RESOURCE_GROUP = "batchpipe-rg"
UBUNTU_2204 = {"publisher": "canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}
T = TypeVar("T")


def arm_pool(vm_size: str = "Standard_D2s_v3", dedicated: int = 1, low_priority: int = 0) -> arm_models.Pool:
    return arm_models.Pool(
        properties=arm_models.PoolProperties(
            display_name="made through ARM",
            vm_size=vm_size,
            deployment_configuration=arm_models.DeploymentConfiguration(
                virtual_machine_configuration=arm_models.VirtualMachineConfiguration(
                    image_reference=arm_models.ImageReference(**UBUNTU_2204),
                    node_agent_sku_id="batch.node.ubuntu 22.04",
                )
            ),
            scale_settings=arm_models.ScaleSettings(
                fixed_scale=arm_models.FixedScaleSettings(
                    target_dedicated_nodes=dedicated, target_low_priority_nodes=low_priority
                )
            ),
            start_task=arm_models.StartTask(
                command_line="/bin/true",
                user_identity=arm_models.UserIdentity(
                    auto_user=arm_models.AutoUserSpecification(scope="Pool", elevation_level="Admin")
                ),
            ),
        )
    )


def data_plane_pool(pool_id: str, **options: Any) -> batch_models.BatchPoolCreateOptions:
    """A data-plane pool on the same image as :func:`arm_pool`."""
    return batch_models.BatchPoolCreateOptions(
        id=pool_id,
        vm_size="standard_d2s_v3",
        virtual_machine_configuration=batch_models.VirtualMachineConfiguration(
            image_reference=batch_models.BatchVmImageReference(**UBUNTU_2204),
            node_agent_sku_id="batch.node.ubuntu 22.04",
        ),
        **options,
    )


def _trust(tls: LocalTls) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.ca_file))


def set_quotas(emulator: ThreadedEmulator, tls: LocalTls, **quotas: Any) -> dict[str, Any]:
    response = httpx.put(f"{emulator.url}/_emulator/quotas", json=quotas, verify=_trust(tls))
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def arm_request(
    emulator: ThreadedEmulator, tls: LocalTls, path: str, token: str | None, *, method: str = "GET", body: Any = None
) -> httpx.Response:
    """A raw management-plane request (to see the wire shapes the SDK hides)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{emulator.url}{path}?api-version=2025-06-01"
    return httpx.request(method, url, json=body, headers=headers, verify=_trust(tls))


def test_the_account_shows_the_quotas_set_for_tests(
    mgmt: BatchManagementClient, arm_emulator: ThreadedEmulator, local_tls: LocalTls, subscription_id: str
) -> None:
    set_quotas(
        arm_emulator,
        local_tls,
        dedicatedCoreQuota=40,
        lowPriorityCoreQuota=0,
        poolQuota=3,
        activeJobAndJobScheduleQuota=5,
        dedicatedCoreQuotaPerVMFamily=[{"name": "standardDSv3Family", "coreQuota": 8}],
        dedicatedCoreQuotaPerVMFamilyEnforced=True,
    )

    account = mgmt.batch_account.get(RESOURCE_GROUP, ACCOUNT)

    group = f"/subscriptions/{subscription_id}/resourceGroups/{RESOURCE_GROUP}"
    assert account.id == f"{group}/providers/Microsoft.Batch/batchAccounts/localbatch"
    assert account.properties is not None
    assert (account.properties.dedicated_core_quota, account.properties.low_priority_core_quota) == (40, 0)
    assert (account.properties.pool_quota, account.properties.active_job_and_job_schedule_quota) == (3, 5)
    assert account.properties.dedicated_core_quota_per_vm_family_enforced is True
    families = {f.name: f.core_quota for f in account.properties.dedicated_core_quota_per_vm_family or []}
    assert families["standardDSv3Family"] == 8
    assert families["standardDDSv5Family"] == 40  # families without their own quota share the account's
    assert account.properties.account_endpoint == arm_emulator.url.split("://", 1)[1]


def test_the_account_is_listed_by_resource_group_and_by_subscription(mgmt: BatchManagementClient) -> None:
    in_group = [account.name for account in mgmt.batch_account.list_by_resource_group(RESOURCE_GROUP)]
    in_subscription = [account.id for account in mgmt.batch_account.list()]

    assert in_group == [ACCOUNT]
    assert len(in_subscription) == 1
    assert in_subscription[0].endswith("/batchAccounts/localbatch")


def test_another_account_name_is_not_found_in_the_arm_error_shape(mgmt: BatchManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        mgmt.batch_account.get(RESOURCE_GROUP, "otheraccount")

    assert caught.value.error is not None
    assert caught.value.error.code == "ResourceNotFound"
    assert "localbatch" in str(caught.value.error.message)


def test_a_regenerated_key_signs_data_plane_requests_and_the_old_one_no_longer_does(
    mgmt: BatchManagementClient, arm_emulator: ThreadedEmulator, local_tls: LocalTls
) -> None:
    before = mgmt.batch_account.get_keys(RESOURCE_GROUP, ACCOUNT)
    assert before.primary == arm_emulator.account_key

    after = mgmt.batch_account.regenerate_key(
        RESOURCE_GROUP, ACCOUNT, arm_models.BatchAccountRegenerateKeyParameters(key_name="Primary")
    )

    assert after.primary not in (None, before.primary)
    assert after.secondary == before.secondary
    for key, works in ((after.primary, True), (before.secondary, True), (before.primary, False)):
        credential = AzureNamedKeyCredential(ACCOUNT, str(key))
        with BatchClient(arm_emulator.url, credential, connection_verify=str(local_tls.ca_file)) as client:
            if works:
                assert list(client.list_pools()) == []
            else:
                with pytest.raises(HttpResponseError) as refused:
                    list(client.list_pools())
                assert refused.value.status_code == 403


def test_a_pool_made_through_arm_is_the_data_plane_pool_and_its_nodes_show_on_both(
    mgmt: BatchManagementClient, data_plane: BatchClient
) -> None:
    created = mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "armpool", arm_pool(dedicated=1))

    assert created.properties is not None
    assert created.properties.provisioning_state == "Succeeded"
    seen = data_plane.get_pool("armpool")
    assert (seen.vm_size, seen.target_dedicated_nodes, seen.display_name) == ("standard_d2s_v3", 1, "made through ARM")
    assert seen.virtual_machine_configuration.node_agent_sku_id == "batch.node.ubuntu 22.04"
    assert seen.start_task is not None
    assert seen.start_task.user_identity.auto_user.elevation_level == "admin"

    def steady() -> arm_models.Pool | None:
        pool = mgmt.pool.get(RESOURCE_GROUP, ACCOUNT, "armpool")
        assert pool.properties is not None
        return pool if pool.properties.allocation_state == "Steady" else None

    pool = wait_until(steady, what="the ARM pool to be steady")
    assert pool.properties is not None
    assert pool.properties.current_dedicated_nodes == 1
    assert len(list(data_plane.list_nodes("armpool"))) == 1


def test_a_data_plane_pool_is_listed_through_arm_with_its_scale_settings(
    mgmt: BatchManagementClient, data_plane: BatchClient
) -> None:
    data_plane.create_pool(
        data_plane_pool(
            "dppool",
            target_dedicated_nodes=0,
            target_low_priority_nodes=2,
            task_scheduling_policy=batch_models.BatchTaskSchedulingPolicy(node_fill_type="pack"),
        )
    )

    [pool] = mgmt.pool.list_by_batch_account(RESOURCE_GROUP, ACCOUNT)

    assert pool.name == "dppool"
    assert pool.properties is not None
    fixed = pool.properties.scale_settings.fixed_scale  # type: ignore[union-attr]
    assert (fixed.target_dedicated_nodes, fixed.target_low_priority_nodes) == (0, 2)  # type: ignore[union-attr]
    assert pool.properties.task_scheduling_policy.node_fill_type == "Pack"  # type: ignore[union-attr]
    vm = pool.properties.deployment_configuration.virtual_machine_configuration  # type: ignore[union-attr]
    assert vm.node_agent_sku_id == "batch.node.ubuntu 22.04"  # type: ignore[union-attr]


def test_patch_resizes_the_pool_and_refuses_to_change_its_vm_size(
    mgmt: BatchManagementClient, data_plane: BatchClient
) -> None:
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "patched", arm_pool(dedicated=0))

    updated = mgmt.pool.update(
        RESOURCE_GROUP,
        ACCOUNT,
        "patched",
        arm_models.Pool(
            properties=arm_models.PoolProperties(
                scale_settings=arm_models.ScaleSettings(
                    fixed_scale=arm_models.FixedScaleSettings(target_dedicated_nodes=2)
                ),
                metadata=[arm_models.MetadataItem(name="owner", value="arm")],
            )
        ),
    )

    assert updated.properties is not None
    assert updated.properties.allocation_state == "Resizing"
    seen = data_plane.get_pool("patched")
    assert seen.target_dedicated_nodes == 2
    assert [(item.name, item.value) for item in seen.metadata or []] == [("owner", "arm")]
    with pytest.raises(HttpResponseError) as caught:
        mgmt.pool.update(
            RESOURCE_GROUP,
            ACCOUNT,
            "patched",
            arm_models.Pool(properties=arm_models.PoolProperties(vm_size="Standard_F2s_v2")),
        )
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "PropertyCannotBeUpdated"
    assert caught.value.error.target == "properties.vmSize"


def test_stop_resize_answers_the_pool(mgmt: BatchManagementClient) -> None:
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "stopped", arm_pool(dedicated=3))

    stopped = mgmt.pool.stop_resize(RESOURCE_GROUP, ACCOUNT, "stopped")

    assert stopped.properties is not None
    assert stopped.properties.allocation_state in ("Stopping", "Steady")


def scale(formula: str | None = None, dedicated: int | None = None) -> arm_models.Pool:
    """A PATCH body with only scale settings: autoscale with ``formula``, or a fixed scale of ``dedicated`` nodes."""
    settings = (
        arm_models.ScaleSettings(auto_scale=arm_models.AutoScaleSettings(formula=formula))
        if formula is not None
        else arm_models.ScaleSettings(fixed_scale=arm_models.FixedScaleSettings(target_dedicated_nodes=dedicated))
    )
    return arm_models.Pool(properties=arm_models.PoolProperties(scale_settings=settings))


def steady_data_plane_pool(data_plane: BatchClient, pool_id: str, **expected: Any) -> batch_models.BatchPool:
    """The data-plane pool once it is steady with the ``expected`` attribute values."""

    def settled() -> batch_models.BatchPool | None:
        pool = data_plane.get_pool(pool_id)
        matches = all(getattr(pool, name) == value for name, value in expected.items())
        return pool if pool.allocation_state == "steady" and matches else None

    return wait_until(settled, what=f"{pool_id} steady with {expected}")


def test_patch_switches_a_pool_between_fixed_scale_and_autoscale_and_disable_keeps_the_targets(
    mgmt: BatchManagementClient, data_plane: BatchClient
) -> None:
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "switching", arm_pool(dedicated=0))
    steady_data_plane_pool(data_plane, "switching")

    patched = mgmt.pool.update(RESOURCE_GROUP, ACCOUNT, "switching", scale(formula="$TargetDedicatedNodes=2"))

    assert patched.properties is not None
    auto = patched.properties.scale_settings.auto_scale  # type: ignore[union-attr]
    assert auto.formula == "$TargetDedicatedNodes=2"  # type: ignore[union-attr]
    assert auto.evaluation_interval == timedelta(minutes=15)  # type: ignore[union-attr]  # the data plane's default
    seen = steady_data_plane_pool(data_plane, "switching", current_dedicated_nodes=2)
    assert (seen.enable_auto_scale, seen.auto_scale_formula) == (True, "$TargetDedicatedNodes=2")
    run = mgmt.pool.get(RESOURCE_GROUP, ACCOUNT, "switching").properties.auto_scale_run  # type: ignore[union-attr]
    assert run is not None
    assert run.evaluation_time is not None
    assert run.results is not None
    assert run.results.startswith("$TargetDedicatedNodes=2;")

    fixed = mgmt.pool.update(RESOURCE_GROUP, ACCOUNT, "switching", scale(dedicated=1))

    assert fixed.properties is not None
    assert fixed.properties.auto_scale_run is None
    fixed_scale = fixed.properties.scale_settings.fixed_scale  # type: ignore[union-attr]
    assert fixed_scale.target_dedicated_nodes == 1  # type: ignore[union-attr]
    seen = steady_data_plane_pool(data_plane, "switching", current_dedicated_nodes=1)
    assert (seen.enable_auto_scale, seen.auto_scale_formula, seen.target_dedicated_nodes) == (False, None, 1)

    mgmt.pool.update(RESOURCE_GROUP, ACCOUNT, "switching", scale(formula="$TargetDedicatedNodes=3"))
    steady_data_plane_pool(data_plane, "switching", current_dedicated_nodes=3)
    disabled = mgmt.pool.disable_auto_scale(RESOURCE_GROUP, ACCOUNT, "switching")

    assert disabled.properties is not None
    kept = disabled.properties.scale_settings.fixed_scale  # type: ignore[union-attr]
    assert kept.target_dedicated_nodes == 3  # type: ignore[union-attr]
    assert data_plane.get_pool("switching").enable_auto_scale is False


@pytest.mark.parametrize(
    ("settings", "code", "target"),
    [
        ({"autoScale": {"formula": "$TargetDedicatedNodes = ("}}, "AutoScalingFormulaSyntaxError", None),
        (
            {"autoScale": {"formula": "$TargetDedicatedNodes=1", "evaluationInterval": "PT1M"}},
            "InvalidPropertyValue",
            "properties.scaleSettings.autoScale.evaluationInterval",
        ),
    ],
)
def test_bad_autoscale_settings_are_refused_in_the_arm_shape_and_the_pool_stays_fixed(
    arm_emulator: ThreadedEmulator,
    local_tls: LocalTls,
    mgmt: BatchManagementClient,
    settings: dict[str, Any],
    code: str,
    target: str | None,
) -> None:
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "refusing", arm_pool(dedicated=0))
    token = LocalDevelopmentCredential().get_token("https://management.azure.com/.default").token
    path = f"/subscriptions/any/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Batch/batchAccounts/localbatch"

    response = arm_request(
        arm_emulator,
        local_tls,
        f"{path}/pools/refusing",
        token,
        method="PATCH",
        body={"properties": {"scaleSettings": settings}},
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error.get("target")) == (code, target)
    pool = mgmt.pool.get(RESOURCE_GROUP, ACCOUNT, "refusing")
    assert pool.properties.scale_settings.fixed_scale is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("plane", ["arm", "data"])
def test_an_autoscale_pool_made_on_either_plane_shows_on_both_and_evaluates_formulas(
    plane: str, mgmt: BatchManagementClient, data_plane: BatchClient
) -> None:
    formula = "$TargetDedicatedNodes=1"
    if plane == "arm":
        pool = arm_pool()
        pool.properties.scale_settings = scale(formula=formula).properties.scale_settings  # type: ignore[union-attr]
        mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "autoscaled", pool)
    else:
        data_plane.create_pool(data_plane_pool("autoscaled", enable_auto_scale=True, auto_scale_formula=formula))

    seen = steady_data_plane_pool(data_plane, "autoscaled", current_dedicated_nodes=1)
    evaluated = data_plane.evaluate_pool_auto_scale(
        "autoscaled", batch_models.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes=4")
    )
    arm_view = mgmt.pool.get(RESOURCE_GROUP, ACCOUNT, "autoscaled").properties

    assert (seen.enable_auto_scale, seen.auto_scale_formula) == (True, formula)
    assert evaluated.results is not None
    assert evaluated.results.startswith("$TargetDedicatedNodes=4;")
    assert arm_view is not None
    assert arm_view.scale_settings.auto_scale.formula == formula  # type: ignore[union-attr]
    assert arm_view.auto_scale_run is not None
    assert arm_view.auto_scale_run.results == seen.auto_scale_run.results  # type: ignore[union-attr]
    assert arm_view.current_dedicated_nodes == 1


def test_a_pool_the_data_plane_refuses_is_refused_naming_the_arm_property(mgmt: BatchManagementClient) -> None:
    pool = arm_pool()
    vm = pool.properties.deployment_configuration.virtual_machine_configuration  # type: ignore[union-attr]
    vm.node_agent_sku_id = "batch.node.centos 7"  # type: ignore[union-attr]

    with pytest.raises(HttpResponseError) as caught:
        mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "unsupported", pool)

    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidPropertyValue"
    assert caught.value.error.target == "properties.deploymentConfiguration.virtualMachineConfiguration.nodeAgentSkuId"


def test_user_accounts_keep_their_passwords_to_themselves_on_both_planes(
    mgmt: BatchManagementClient, data_plane: BatchClient
) -> None:
    pool = arm_pool(dedicated=0)
    pool.properties.user_accounts = [  # type: ignore[union-attr]
        arm_models.UserAccount(name="builder", password="pa55-word", elevation_level="Admin"),
        arm_models.UserAccount(name="reader", password="pa55-word"),
    ]

    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "users", pool)

    arm_users = mgmt.pool.get(RESOURCE_GROUP, ACCOUNT, "users").properties.user_accounts  # type: ignore[union-attr]
    data_users = data_plane.get_pool("users").user_accounts or []
    assert [(u.name, u.elevation_level, u.password) for u in arm_users or []] == [
        ("builder", "Admin", None),
        ("reader", "NonAdmin", None),
    ]
    assert [(u.name, u.elevation_level, u.password) for u in data_users] == [
        ("builder", "admin", None),
        ("reader", "nonadmin", None),  # the data plane fills in the default, as the service does
    ]


def test_a_resizing_autoscale_pool_takes_its_template_again_but_refuses_a_new_formula(
    mgmt: BatchManagementClient, data_plane: BatchClient, arm_emulator: ThreadedEmulator, local_tls: LocalTls
) -> None:
    response = httpx.put(
        f"{arm_emulator.url}/_emulator/faults", json={"spec": "slow_allocation=3s"}, verify=_trust(local_tls)
    )
    response.raise_for_status()
    pool = arm_pool()
    pool.properties.scale_settings = scale(formula="$TargetDedicatedNodes=1").properties.scale_settings  # type: ignore[union-attr]
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "growing", pool)

    def resizing_to_one() -> bool:
        seen = data_plane.get_pool("growing")
        return seen.auto_scale_run is not None and (seen.allocation_state, seen.target_dedicated_nodes) == (
            "resizing",
            1,
        )

    wait_until(resizing_to_one, what="the first evaluation to resize the pool")

    again = mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "growing", pool)  # a re-applied template: nothing to change
    with pytest.raises(HttpResponseError) as caught:
        mgmt.pool.update(RESOURCE_GROUP, ACCOUNT, "growing", scale(formula="$TargetDedicatedNodes=2"))

    assert again.properties.scale_settings.auto_scale.formula == "$TargetDedicatedNodes=1"  # type: ignore[union-attr]
    assert caught.value.status_code == 409
    assert caught.value.error is not None
    assert caught.value.error.code == "PoolBeingResized"


def test_nat_pools_of_an_arm_pool_become_the_nodes_inbound_endpoints(
    mgmt: BatchManagementClient, data_plane: BatchClient
) -> None:
    pool = arm_pool(dedicated=1)
    pool.properties.network_configuration = arm_models.NetworkConfiguration(  # type: ignore[union-attr]
        endpoint_configuration=arm_models.PoolEndpointConfiguration(
            inbound_nat_pools=[
                arm_models.InboundNatPool(
                    name="web",
                    protocol="TCP",
                    backend_port=8080,
                    frontend_port_range_start=15000,
                    frontend_port_range_end=15099,
                )
            ]
        )
    )

    created = mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "served", pool)
    [node] = wait_until(lambda: list(data_plane.list_nodes("served")), what="the node")

    endpoints = node.endpoint_configuration.inbound_endpoints  # type: ignore[union-attr]
    assert [(e.name, e.protocol, e.frontend_port, e.backend_port) for e in endpoints] == [("web.0", "tcp", 15000, 8080)]
    [nat] = created.properties.network_configuration.endpoint_configuration.inbound_nat_pools  # type: ignore[union-attr]
    assert (nat.name, nat.protocol) == ("web", "TCP")


def test_delete_is_a_long_running_operation_the_sdk_poller_completes(
    mgmt: BatchManagementClient, data_plane: BatchClient
) -> None:
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "doomed", arm_pool(dedicated=1))

    poller = mgmt.pool.begin_delete(RESOURCE_GROUP, ACCOUNT, "doomed")
    poller.result(timeout=15)

    assert poller.done()
    with pytest.raises(ResourceNotFoundError):
        data_plane.get_pool("doomed")
    with pytest.raises(ResourceNotFoundError) as caught:
        mgmt.pool.get(RESOURCE_GROUP, ACCOUNT, "doomed")
    assert caught.value.error is not None
    assert caught.value.error.code == "PoolNotFound"


def test_the_pool_quota_refuses_a_pool_on_either_plane_in_each_planes_error_shape(
    mgmt: BatchManagementClient, arm_emulator: ThreadedEmulator, local_tls: LocalTls
) -> None:
    set_quotas(arm_emulator, local_tls, poolQuota=1)
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "first", arm_pool(dedicated=0))

    with pytest.raises(HttpResponseError) as caught:
        mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "second", arm_pool(dedicated=0))

    assert caught.value.status_code == 409
    body = caught.value.response.json()  # type: ignore[union-attr]
    assert set(body) == {"error"}
    assert body["error"]["code"] == "PoolQuotaReached"


@pytest.mark.parametrize("plane", ["arm", "data"])
def test_an_enforced_family_quota_stops_allocation_on_both_planes(
    plane: str,
    mgmt: BatchManagementClient,
    data_plane: BatchClient,
    arm_emulator: ThreadedEmulator,
    local_tls: LocalTls,
) -> None:
    set_quotas(
        arm_emulator,
        local_tls,
        dedicatedCoreQuotaPerVMFamily=[{"name": "standardDSv3Family", "coreQuota": 2}],
        dedicatedCoreQuotaPerVMFamilyEnforced=True,
    )
    if plane == "arm":
        mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "capped", arm_pool(dedicated=2))
    else:
        data_plane.create_pool(data_plane_pool("capped", target_dedicated_nodes=2))

    def settled() -> Any:
        pool = data_plane.get_pool("capped")
        return pool if pool.allocation_state == "steady" else None

    pool = wait_until(settled, what="the capped pool to settle")
    assert pool.current_dedicated_nodes == 1
    assert [error.code for error in pool.resize_errors or []] == ["AccountVMSeriesCoreQuotaReached"]
    arm_view = mgmt.pool.get(RESOURCE_GROUP, ACCOUNT, "capped")
    errors = arm_view.properties.resize_operation_status.errors  # type: ignore[union-attr]
    assert [error.code for error in errors or []] == ["AccountVMSeriesCoreQuotaReached"]


def test_the_location_offers_the_catalogue_sizes_with_their_families(mgmt: BatchManagementClient) -> None:
    skus = {sku.name: sku for sku in mgmt.location.list_supported_virtual_machine_skus("westeurope")}

    d2s = skus["Standard_D2s_v3"]
    assert d2s.family_name == "standardDSv3Family"
    assert {c.name: c.value for c in d2s.capabilities or []}["vCPUs"] == "2"
    assert mgmt.location.get_quotas("westeurope").account_quota == 1


@pytest.mark.parametrize(
    ("name", "available", "reason"),
    [
        ("localbatch", False, "AlreadyExists"),
        ("ab", False, "Invalid"),
        ("Has_Caps", False, "Invalid"),
        ("newacct1", True, None),
    ],
)
def test_check_name_availability(mgmt: BatchManagementClient, name: str, available: bool, reason: str | None) -> None:
    result = mgmt.location.check_name_availability(
        "westeurope", arm_models.CheckNameAvailabilityParameters(name=name, type="Microsoft.Batch/batchAccounts")
    )

    assert (result.name_available, result.reason) == (available, reason)


def test_requests_without_a_management_token_are_refused_with_401_in_the_arm_shape(
    arm_emulator: ThreadedEmulator, local_tls: LocalTls
) -> None:
    path = f"/subscriptions/any/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Batch/batchAccounts/localbatch"
    batch_token = LocalDevelopmentCredential().get_token("https://batch.core.windows.net//.default").token

    missing = arm_request(arm_emulator, local_tls, path, None)
    wrong_audience = arm_request(arm_emulator, local_tls, path, batch_token)

    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/json; charset=utf-8"  # ARM's, not the data plane's
    assert missing.json()["error"]["code"] == "AuthenticationFailed"
    assert wrong_audience.status_code == 401
    assert wrong_audience.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_arm_paths_match_case_insensitively_and_unknown_ones_answer_in_the_arm_shape(
    arm_emulator: ThreadedEmulator, local_tls: LocalTls
) -> None:
    token = LocalDevelopmentCredential().get_token("https://management.azure.com/.default").token
    lower = f"/subscriptions/any/resourcegroups/{RESOURCE_GROUP}/providers/microsoft.batch/batchaccounts/localbatch"

    found = arm_request(arm_emulator, local_tls, lower, token)
    unknown = arm_request(arm_emulator, local_tls, f"{lower}/nosuchthing", token)

    assert found.status_code == 200
    assert found.json()["name"] == "localbatch"
    assert unknown.status_code == 400
    assert set(unknown.json()["error"]) >= {"code", "message"}


def test_key_mode_serves_the_management_plane_to_loopback_clients_over_http() -> None:
    from batch_emulator.server import EmulatorConfig

    with ThreadedEmulator(EmulatorConfig(port=0)) as emulator:
        client = BatchManagementClient(LocalDevelopmentCredential(), "any-subscription", base_url=emulator.url)
        with client:
            account = client.batch_account.get(RESOURCE_GROUP, ACCOUNT, enforce_https=False)
    assert account.name == ACCOUNT


def test_creating_the_existing_account_completes_the_sdk_poller_with_the_account(mgmt: BatchManagementClient) -> None:
    poller = mgmt.batch_account.begin_create(
        RESOURCE_GROUP, ACCOUNT, arm_models.BatchAccountCreateParameters(location="local")
    )

    account = poller.result(timeout=15)

    assert account.name == ACCOUNT
    assert account.properties is not None
    assert account.properties.provisioning_state == "Succeeded"


def test_another_account_cannot_be_created(arm_emulator: ThreadedEmulator, local_tls: LocalTls) -> None:
    token = LocalDevelopmentCredential().get_token("https://management.azure.com/.default").token
    path = f"/subscriptions/any/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Batch/batchAccounts/another"

    response = arm_request(arm_emulator, local_tls, path, token, method="PUT", body={"location": "local"})

    assert response.status_code == 501
    assert response.json()["error"]["code"] == "NotImplemented"
    assert "localbatch" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"poolQuota": -1}, "poolQuota"),
        ({"dedicatedCoreQuotaPerVMFamily": [{"name": 3}]}, "dedicatedCoreQuotaPerVMFamily"),
    ],
)
def test_the_quota_admin_route_refuses_bad_values_naming_the_property(
    arm_emulator: ThreadedEmulator, local_tls: LocalTls, body: dict[str, Any], named: str
) -> None:
    response = httpx.put(f"{arm_emulator.url}/_emulator/quotas", json=body, verify=_trust(local_tls))

    assert response.status_code == 400
    assert response.json()["code"] == "InvalidPropertyValue"
    assert {"key": "PropertyName", "value": named} in response.json()["values"]


def pool_names(mgmt: BatchManagementClient, **query: Any) -> list[str]:
    return sorted(str(pool.name) for pool in mgmt.pool.list_by_batch_account(RESOURCE_GROUP, ACCOUNT, **query))


def test_the_pool_list_takes_filter_and_select(mgmt: BatchManagementClient) -> None:
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "list-fixed", arm_pool(dedicated=0))
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "list-other", arm_pool(vm_size="Standard_F2s_v2", dedicated=0))
    autoscaled = arm_pool(dedicated=0)
    assert autoscaled.properties is not None
    autoscaled.properties.scale_settings = arm_models.ScaleSettings(
        auto_scale=arm_models.AutoScaleSettings(formula="$TargetDedicatedNodes=0")
    )
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "list-auto", autoscaled)
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "elsewhere", arm_pool(dedicated=0))

    assert pool_names(mgmt, filter="properties/vmSize eq 'standard_f2s_v2'") == ["list-other"]
    assert pool_names(mgmt, filter="properties/scaleSettings/autoScale ne null") == ["list-auto"]
    both = "startswith(name, 'list-') and properties/vmSize eq 'STANDARD_D2S_V3'"
    assert pool_names(mgmt, filter=both) == ["list-auto", "list-fixed"]
    assert pool_names(mgmt, filter="name eq 'elsewhere' or name eq 'list-other'") == ["elsewhere", "list-other"]
    [chosen] = mgmt.pool.list_by_batch_account(
        RESOURCE_GROUP,
        ACCOUNT,
        filter="name eq 'list-fixed'",
        select="properties/vmSize,properties/provisioningState",
    )
    assert (chosen.name, str(chosen.id).rsplit("/", 1)[1]) == ("list-fixed", "list-fixed")
    assert chosen.properties is not None
    assert (chosen.properties.vm_size, chosen.properties.provisioning_state) == ("STANDARD_D2S_V3", "Succeeded")
    assert chosen.properties.scale_settings is None
    assert chosen.properties.deployment_configuration is None
    assert len(pool_names(mgmt)) == 4  # no filter: every pool

    for query in ({"filter": "name eq"}, {"select": "vmSize"}):
        with pytest.raises(HttpResponseError) as caught:
            pool_names(mgmt, **query)
        assert caught.value.status_code == 400
        assert caught.value.error is not None
        assert caught.value.error.code == "InvalidQueryParameterValue"


def test_the_vm_size_list_takes_a_family_filter(mgmt: BatchManagementClient) -> None:
    every = list(mgmt.location.list_supported_virtual_machine_skus("westeurope"))
    family = list(
        mgmt.location.list_supported_virtual_machine_skus("westeurope", filter="familyName eq 'standardDSv3Family'")
    )

    assert "Standard_D2s_v3" in {sku.name for sku in family}
    assert {sku.family_name for sku in family} == {"standardDSv3Family"}
    assert len(family) == sum(sku.family_name == "standardDSv3Family" for sku in every) < len(every)


def test_a_pool_patch_with_one_bad_property_changes_nothing(
    mgmt: BatchManagementClient, data_plane: BatchClient
) -> None:
    mgmt.pool.create(RESOURCE_GROUP, ACCOUNT, "atomic", arm_pool(dedicated=0))
    before = mgmt.pool.get(RESOURCE_GROUP, ACCOUNT, "atomic")
    bad_start_task = arm_models.StartTask(wait_for_success=True)  # no commandLine
    for scale in (
        arm_models.ScaleSettings(fixed_scale=arm_models.FixedScaleSettings(target_dedicated_nodes=2)),
        arm_models.ScaleSettings(auto_scale=arm_models.AutoScaleSettings(formula="$TargetDedicatedNodes=2")),
    ):
        patch = arm_models.Pool(
            properties=arm_models.PoolProperties(
                scale_settings=scale,
                display_name="renamed",
                metadata=[arm_models.MetadataItem(name="owner", value="arm")],
                start_task=bad_start_task,
            )
        )
        with pytest.raises(HttpResponseError) as caught:
            mgmt.pool.update(RESOURCE_GROUP, ACCOUNT, "atomic", patch)
        assert caught.value.status_code == 400
        assert caught.value.error is not None
        assert caught.value.error.target == "properties.startTask.commandLine"

        seen = data_plane.get_pool("atomic")
        assert (seen.target_dedicated_nodes, seen.enable_auto_scale) == (0, False)
        assert (seen.display_name, seen.metadata) == ("made through ARM", None)
        assert seen.start_task is not None
        assert seen.start_task.command_line == "/bin/true"
    after = mgmt.pool.get(RESOURCE_GROUP, ACCOUNT, "atomic")
    assert after.etag == before.etag


def test_account_patch_sets_tags_and_is_all_or_nothing(mgmt: BatchManagementClient) -> None:
    tagged = mgmt.batch_account.update(
        RESOURCE_GROUP,
        ACCOUNT,
        arm_models.BatchAccountUpdateParameters(
            tags={"team": "data", "env": "local"},
            properties=arm_models.BatchAccountUpdateProperties(
                public_network_access="Enabled",  # the values it has are accepted
                allowed_authentication_modes=["AAD", "SharedKey", "TaskAuthenticationToken"],
            ),
        ),
    )
    assert tagged.tags == {"team": "data", "env": "local"}
    assert mgmt.batch_account.get(RESOURCE_GROUP, ACCOUNT).tags == {"team": "data", "env": "local"}

    refused = [
        (arm_models.BatchAccountUpdateProperties(public_network_access="Disabled"), 501, None),
        (arm_models.BatchAccountUpdateProperties(allowed_authentication_modes=["SharedKey"]), 501, None),
        (
            arm_models.BatchAccountUpdateProperties(allowed_authentication_modes=["Password"]),
            400,
            "properties.allowedAuthenticationModes",
        ),
    ]
    for properties, status, target in refused:
        with pytest.raises(HttpResponseError) as caught:
            mgmt.batch_account.update(
                RESOURCE_GROUP,
                ACCOUNT,
                arm_models.BatchAccountUpdateParameters(tags={"team": "other"}, properties=properties),
            )
        assert caught.value.status_code == status
        assert caught.value.error is not None
        assert caught.value.error.target == target
        assert mgmt.batch_account.get(RESOURCE_GROUP, ACCOUNT).tags == {"team": "data", "env": "local"}
