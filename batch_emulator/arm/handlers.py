"""Management-plane (ARM) handlers and routes: parse, one model call, render.

Paths are those of ``management.azure.com`` (``/subscriptions/{sub}/resourceGroups/{rg}/providers/
Microsoft.Batch/...``), matched case-insensitively; every answer is JSON (errors in the ARM shape).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import Response

from batch_emulator.arm import listing, models, shapes
from batch_emulator.arm.errors import ResourceNotFound
from batch_emulator.arm.shapes import AccountScope
from batch_emulator.arm.translate import in_arm_terms, pool_create_body
from batch_emulator.context import RequestContext
from batch_emulator.errors import BatchError, OperationNotImplemented
from batch_emulator.handlers.admin import ADMIN_PREFIX
from batch_emulator.handlers.common import check_conditions, json_response
from batch_emulator.models import autoscale
from batch_emulator.models import pools as pool_model
from batch_emulator.models.account import Account
from batch_emulator.models.pools import Pool
from batch_emulator.models.validation import id_key
from batch_emulator.render import seg
from batch_emulator.routing import Route

ARM_MEDIA_TYPE = "application/json; charset=utf-8"
#: ``Retry-After`` of a pool deletion in progress (the mgmt SDK's poller waits this long between polls).
DELETE_POLL_SECONDS = 1
_SUBSCRIPTION = "/subscriptions/{subscriptionId}"
_PROVIDER = f"{_SUBSCRIPTION}/providers/Microsoft.Batch"
_ACCOUNTS = f"{_SUBSCRIPTION}/resourceGroups/{{resourceGroupName}}/providers/Microsoft.Batch/batchAccounts"
_ACCOUNT = f"{_ACCOUNTS}/{{accountName}}"
_POOL = f"{_ACCOUNT}/pools/{{poolName}}"
_LOCATION = f"{_PROVIDER}/locations/{{locationName}}"
_DELETE_OPERATION = "delete-"


def arm_json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response with ARM's content type."""
    return json_response(body, status, headers, ARM_MEDIA_TYPE)


def _scope(ctx: RequestContext) -> AccountScope:
    """The addressed account (its name checked), in the subscription and resource group the client named."""
    resource_group = ctx.params.get("resourceGroupName", "")
    name = models.find_account(ctx.service, ctx.params["accountName"], resource_group)
    return AccountScope(ctx.params["subscriptionId"], resource_group, name)


def _account_response(ctx: RequestContext, scope: AccountScope) -> dict[str, Any]:
    with ctx.service.account.lock:
        return shapes.account_resource(ctx.service, scope, urlsplit(ctx.origin).netloc)


# --- accounts ---------------------------------------------------------------------------------------------
def get_account(ctx: RequestContext) -> Response:
    """``GET .../batchAccounts/{accountName}``."""
    return arm_json(_account_response(ctx, _scope(ctx)))


def put_account(ctx: RequestContext) -> Response:
    """``PUT .../batchAccounts/{accountName}``: the existing account answers 200 (accounts are not created here)."""
    if ctx.params["accountName"].lower() != ctx.service.account.name.lower():
        raise OperationNotImplemented(f"creating Batch accounts (this service serves '{ctx.service.account.name}')")
    return get_account(ctx)


def patch_account(ctx: RequestContext) -> Response:
    """``PATCH .../batchAccounts/{accountName}``: tags (the other properties only with the values they have)."""
    scope = _scope(ctx)
    body = ctx.json()
    with ctx.service.account.lock:
        try:
            models.update_account(ctx.service.account, body)
        except BatchError as error:
            raise in_arm_terms(error) from None
    return arm_json(_account_response(ctx, scope))


def list_accounts(ctx: RequestContext) -> Response:
    """``GET .../batchAccounts`` of a subscription or a resource group: the one account."""
    scope = AccountScope(
        ctx.params["subscriptionId"],
        ctx.params.get("resourceGroupName", models.DEFAULT_RESOURCE_GROUP),
        ctx.service.account.name,
    )
    return arm_json({"value": [_account_response(ctx, scope)]})


def list_keys(ctx: RequestContext) -> Response:
    """``POST .../listKeys``."""
    _scope(ctx)
    return arm_json(shapes.keys_body(ctx.service))


def regenerate_keys(ctx: RequestContext) -> Response:
    """``POST .../regenerateKeys`` with ``{"keyName": "Primary"|"Secondary"}``: the data plane takes the new key."""
    _scope(ctx)
    models.regenerate_key(ctx.service, ctx.json())
    return arm_json(shapes.keys_body(ctx.service))


# --- pools ------------------------------------------------------------------------------------------------
def _pool_response(ctx: RequestContext, pool: Pool, scope: AccountScope) -> Response:
    resource = shapes.pool_resource(pool, scope, ctx.origin)
    return arm_json(resource, headers={"ETag": resource["etag"]})


def get_pool(ctx: RequestContext) -> Response:
    """``GET .../pools/{poolName}``."""
    scope = _scope(ctx)
    account = ctx.service.account
    with account.lock:
        pool = pool_model.get_pool(account, ctx.params["poolName"])
        return _pool_response(ctx, pool, scope)


def list_pools(ctx: RequestContext) -> Response:
    """``GET .../pools``: the pools ``$filter`` keeps (all by default) in creation order, with ``$select``."""
    scope = _scope(ctx)
    names = listing.select_names(ctx.query.get("$select"))
    account = ctx.service.account
    with account.lock:
        pools = sorted(account.pools.values(), key=lambda pool: pool.seq)
        resources = [shapes.pool_resource(pool, scope, ctx.origin) for pool in pools]
    kept = listing.filtered(resources, ctx.query.get("$filter"))
    return arm_json({"value": [listing.selected(resource, names) for resource in kept]})


def _answer_pool(ctx: RequestContext, apply: Callable[[Account], Pool]) -> Response:
    """Apply a change under the account lock, save, and answer the pool it returns."""
    scope = _scope(ctx)
    account = ctx.service.account
    with account.lock:
        try:
            pool = apply(account)
        except BatchError as error:
            raise in_arm_terms(error) from None
        response = _pool_response(ctx, pool, scope)
    ctx.service.persist()
    return response


def _existing(ctx: RequestContext, account: Account) -> Pool:
    """The named pool, not being deleted, its ``If-Match``/``If-None-Match`` conditions met."""
    pool = pool_model.active_pool(account, ctx.params["poolName"])
    check_conditions(ctx, pool.last_modified)
    return pool


def put_pool(ctx: RequestContext) -> Response:
    """``PUT .../pools/{poolName}``: create the pool (200, as Azure answers), or update an existing one."""
    name = ctx.params["poolName"]
    body = ctx.json()

    def create_or_update(account: Account) -> Pool:
        if id_key(name) in account.pools:
            return models.update_pool(account, _existing(ctx, account), body, ctx.now)
        return pool_model.create_pool(account, pool_create_body(name, body), ctx.now)

    return _answer_pool(ctx, create_or_update)


def patch_pool(ctx: RequestContext) -> Response:
    """``PATCH .../pools/{poolName}``: scale settings (fixed or autoscale), start task, metadata, display name."""
    body = ctx.json()
    return _answer_pool(ctx, lambda account: models.update_pool(account, _existing(ctx, account), body, ctx.now))


def _delete_poll_headers(ctx: RequestContext, scope: AccountScope, pool_name: str) -> dict[str, str]:
    location = f"{ctx.origin}{scope.account_id}/poolOperationResults/{_DELETE_OPERATION}{seg(pool_name)}"
    return {"Location": f"{location}?api-version={ctx.query['api-version']}", "Retry-After": str(DELETE_POLL_SECONDS)}


def delete_pool(ctx: RequestContext) -> Response:
    """``DELETE .../pools/{poolName}`` → 202 with a ``Location`` to poll (204 when there is no such pool)."""
    scope = _scope(ctx)
    account = ctx.service.account
    name = ctx.params["poolName"]
    with account.lock:
        pool = account.pools.get(id_key(name))
        if pool is None:
            return Response(b"", status_code=204)
        check_conditions(ctx, pool.last_modified)
        if pool.state != "deleting":  # a repeated ARM delete is accepted again (the data plane answers 409)
            pool_model.delete_pool(account, name, ctx.now)
    ctx.service.persist()
    return Response(b"", status_code=202, headers=_delete_poll_headers(ctx, scope, name))


def pool_operation_result(ctx: RequestContext) -> Response:
    """``GET .../poolOperationResults/delete-{poolName}``: 202 while the pool is being deleted, then 200."""
    scope = _scope(ctx)
    operation = ctx.params["operation"]
    if not operation.startswith(_DELETE_OPERATION):
        raise ResourceNotFound(f"The operation '{operation}' does not exist.")
    name = operation[len(_DELETE_OPERATION) :]
    with ctx.service.account.lock:
        deleting = id_key(name) in ctx.service.account.pools
    if deleting:
        return Response(b"", status_code=202, headers=_delete_poll_headers(ctx, scope, name))
    return Response(b"", status_code=200)


def disable_autoscale(ctx: RequestContext) -> Response:
    """``POST .../disableAutoScale``: the pool keeps its current targets as a fixed scale."""
    return _answer_pool(ctx, lambda account: autoscale.disable_autoscale(account, _existing(ctx, account), ctx.now))


def stop_resize(ctx: RequestContext) -> Response:
    """``POST .../stopResize``."""
    return _answer_pool(ctx, lambda account: pool_model.stop_resize(account, _existing(ctx, account).id, ctx.now))


# --- locations --------------------------------------------------------------------------------------------
def location_quotas(ctx: RequestContext) -> Response:
    """``GET .../locations/{locationName}/quotas``: Batch accounts per subscription and region."""
    return arm_json({"accountQuota": models.ACCOUNT_QUOTA})


def virtual_machine_skus(ctx: RequestContext) -> Response:
    """``GET .../locations/{locationName}/virtualMachineSkus``: the catalogue's VM sizes (``$filter`` on familyName)."""
    skus = [shapes.sku_resource(sku) for sku in models.vm_skus(ctx.service.account.catalog)]
    return arm_json({"value": listing.filtered(skus, ctx.query.get("$filter"))})


def check_name_availability(ctx: RequestContext) -> Response:
    """``POST .../locations/{locationName}/checkNameAvailability``."""
    return arm_json(models.check_name_availability(ctx.service, ctx.json()))


# --- admin ------------------------------------------------------------------------------------------------
def _quota_body(ctx: RequestContext) -> dict[str, Any]:
    scope = AccountScope("-", "-", ctx.service.account.name)
    properties = shapes.account_resource(ctx.service, scope, "")["properties"]
    names = [*models.QUOTA_PROPERTIES, "dedicatedCoreQuotaPerVMFamily", "dedicatedCoreQuotaPerVMFamilyEnforced"]
    return {name: properties[name] for name in names}


def get_quotas(ctx: RequestContext) -> Response:
    """``GET /_emulator/quotas``: the account's quotas, named as on the Batch account resource."""
    with ctx.service.account.lock:
        return arm_json(_quota_body(ctx))


def put_quotas(ctx: RequestContext) -> Response:
    """``PUT /_emulator/quotas``: change some quotas (ARM property names); both planes enforce them at once."""
    body = ctx.json()
    account = ctx.service.account
    with account.lock:
        models.set_quotas(account.quotas, body)
        account.notify()
        return arm_json(_quota_body(ctx))


def _route(method: str, template: str, handler: Any) -> Route:
    return Route(method, template, handler, arm=True)


ROUTES = [
    _route("GET", f"{_PROVIDER}/batchAccounts", list_accounts),
    _route("GET", _ACCOUNTS, list_accounts),
    _route("GET", _ACCOUNT, get_account),
    _route("PUT", _ACCOUNT, put_account),
    _route("PATCH", _ACCOUNT, patch_account),
    _route("POST", f"{_ACCOUNT}/listKeys", list_keys),
    _route("POST", f"{_ACCOUNT}/regenerateKeys", regenerate_keys),
    _route("GET", f"{_ACCOUNT}/pools", list_pools),
    _route("GET", _POOL, get_pool),
    _route("PUT", _POOL, put_pool),
    _route("PATCH", _POOL, patch_pool),
    _route("DELETE", _POOL, delete_pool),
    _route("POST", f"{_POOL}/disableAutoScale", disable_autoscale),
    _route("POST", f"{_POOL}/stopResize", stop_resize),
    _route("GET", f"{_ACCOUNT}/poolOperationResults/{{operation}}", pool_operation_result),
    _route("GET", f"{_LOCATION}/quotas", location_quotas),
    _route("GET", f"{_LOCATION}/virtualMachineSkus", virtual_machine_skus),
    _route("POST", f"{_LOCATION}/checkNameAvailability", check_name_availability),
    Route("GET", f"{ADMIN_PREFIX}/quotas", get_quotas, admin=True),
    Route("PUT", f"{ADMIN_PREFIX}/quotas", put_quotas, admin=True),
]
