"""The catalogue is as wide as the service's, and each api-version's wire differences live in one module."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from batch_emulator.catalog import load_catalog
from batch_emulator.errors import InvalidQueryParameterValue
from batch_emulator.wire_versions import API_VERSIONS, LATEST, adapt, check_api_version, read_request


@pytest.mark.parametrize(
    "size",
    [
        "Standard_A2_v2",
        "Standard_D2_v2",
        "Standard_DS1_v2",
        "Standard_D4s_v3",
        "Standard_E8ds_v4",
        "Standard_D16as_v5",
        "Standard_D2ps_v5",
        "Standard_D8ads_v6",
        "Standard_F4als_v6",
        "Standard_HB120rs_v3",
    ],
)
def test_every_family_from_v2_to_v6_is_offered(size: str) -> None:
    found = load_catalog().vm_size(size.upper())
    assert found is not None
    assert found.name == size
    assert found.cores > 0
    assert found.memory_mb > 0


def test_gpu_sizes_carry_their_gpus_and_retired_sizes_are_gone() -> None:
    catalog = load_catalog()
    assert [
        catalog.vm_size(name).gpus for name in ("standard_nc24s_v3", "standard_nd96asr_v4", "standard_nc4as_t4_v3")
    ] == [4, 8, 1]  # type: ignore[union-attr]
    assert all(catalog.vm_size(name) is None for name in ("standard_nc6", "standard_nv6", "basic_a0", "standard_a0"))
    a1 = catalog.vm_size("standard_a1")  # retired, but still accepted (a CLI recording of October 2024)
    assert a1 is not None
    assert (a1.cores, a1.retired) == (1, "2024-08-31")
    assert catalog.vm_size("standard_d2s_v3").retired is None  # type: ignore[union-attr]


def test_every_image_has_an_end_of_life_and_a_verification_type() -> None:
    catalog = load_catalog()
    assert all(image["verificationType"] in ("verified", "unverified") for image in catalog.images)
    assert all(
        datetime.fromisoformat(image["batchSupportEndOfLife"].replace("Z", "+00:00")) for image in catalog.images
    )
    agents = {image["nodeAgentSKUId"] for image in catalog.images}
    assert {"batch.node.ubuntu 16.04", "batch.node.ubuntu 24.04", "batch.node.debian 12", "batch.node.el 9"} <= agents
    skus = {image["imageReference"]["sku"] for image in catalog.images if image["osType"] == "windows"}
    assert {
        "2016-datacenter-smalldisk",
        "2019-datacenter-core-g2",
        "2022-datacenter-smalldisk-g2",
        "2025-datacenter",
    } <= skus
    later = datetime(2026, 11, 1, tzinfo=UTC)
    listed = catalog.supported_images(later)
    assert all(not catalog.retired(image, later) for image in listed)
    assert len(listed) < len(catalog.images)


@pytest.mark.parametrize(
    "version", ["2021-06-01.14.0", "2022-01-01.15.0", "2023-05-01.17.0", "2024-02-01.19.0", "2024-07-01.20.0", LATEST]
)
def test_the_api_versions_of_azure_batch_11_to_15_are_accepted(version: str) -> None:
    assert check_api_version(version) == version
    assert version in API_VERSIONS


@pytest.mark.parametrize("version", ["2025-06-01.21.0", "2024-07-01", "latest", ""])
def test_other_api_versions_are_refused_with_the_service_error(version: str) -> None:
    with pytest.raises(InvalidQueryParameterValue) as refused:
        check_api_version(version)
    assert ("QueryParameterName", "api-version") in refused.value.values


def test_adapting_to_an_old_version_never_changes_the_newest_shape() -> None:
    pool = {"taskSlotsPerNode": 2, "taskSchedulingPolicy": {"nodeFillType": "Spread", "jobDefaultOrder": "none"}}
    kept = copy.deepcopy(pool)
    old = adapt("pools", pool, "2020-09-01.12.0")
    assert old == {"maxTasksPerNode": 2, "taskSchedulingPolicy": {"nodeFillType": "Spread"}}
    assert pool == kept
    assert adapt("pools", pool, LATEST) is pool


def test_old_request_names_are_read_as_the_newest() -> None:
    body = {"value": [{"id": "t", "resourceFiles": [{"blobSource": "http://x/b", "filePath": "b"}]}]}
    assert read_request(body)["value"][0]["resourceFiles"] == [{"httpUrl": "http://x/b", "filePath": "b"}]
    assert read_request({"id": "p", "maxTasksPerNode": 4}) == {"id": "p", "taskSlotsPerNode": 4}
