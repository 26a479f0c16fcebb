"""Which gateway owns an asset: configured owners, births that claim, deaths that release."""

from __future__ import annotations

import pytest

from core.wire import BirthMessage, DeathMessage
from ingest import _ownership
from ingest._ownership import AssetOwners, state_publisher
from tests._factories import SITE, good_reading


def _birth(agent: str, asset: str, channels: list[str] | None = None) -> BirthMessage:
    return BirthMessage(publisher=state_publisher(agent), seq=0, asset_id=asset, channels=channels or [])


def test_a_configured_owner_is_the_only_gateway_whose_data_is_accepted() -> None:
    owners = AssetOwners({"P-101": (SITE, "gw-1")})
    assert owners.check(SITE, good_reading("gw-1", 0, asset="P-101")) is None
    refused = owners.check(SITE, good_reading("gw-2", 0, asset="P-101"))
    assert refused is not None and "'gw-1'" in refused and "configured" in refused and "'gw-2'" in refused
    assert owners.check("plant9", good_reading("gw-1", 1, asset="P-101")) is not None, "the owner, on another site"
    assert owners.check(SITE, _birth("gw-2", "P-101")) is not None, "a birth cannot take a configured asset"
    assert owners.check(SITE, DeathMessage(publisher=state_publisher("gw-1"), seq=1, asset_id="P-101")) is None
    assert owners.check(SITE, good_reading("gw-2", 1, asset="P-101")) is not None, "a death never frees a configured asset"


def test_the_first_agent_birth_claims_the_agent_and_its_assets() -> None:
    owners = AssetOwners()
    assert owners.check(SITE, good_reading("anyone", 0, asset="P-201")) is None, "nobody owns it yet"
    assert owners.check(SITE, _birth("gw-1", "gw-1", ["P-201", "P-202"])) is None
    assert owners.check(SITE, _birth("gw-1", "P-201", ["vib_de"])) is None
    assert {owners.owner(a).gateway for a in ("gw-1", "P-201", "P-202")} == {"gw-1"}  # type: ignore[union-attr]
    assert owners.check(SITE, good_reading("gw-1", 1, asset="P-202")) is None
    assert owners.check(SITE, good_reading("anyone", 1, asset="P-201")) is not None
    refused = owners.check(SITE, _birth("gw-2", "gw-2", ["P-202", "P-203"]))
    assert refused is not None and "announced in its birth" in refused
    assert owners.owner("P-203") is None, "a refused birth claims nothing"


def test_a_clean_asset_death_frees_a_learnt_asset_for_another_gateway() -> None:
    owners = AssetOwners()
    assert owners.check(SITE, _birth("gw-old", "P-301")) is None
    assert owners.check(SITE, _birth("gw-new", "P-301")) is not None
    assert owners.check(SITE, DeathMessage(publisher=state_publisher("gw-new"), seq=1, asset_id="P-301")) is not None
    assert owners.check(SITE, DeathMessage(publisher=state_publisher("gw-old"), seq=1, asset_id="P-301")) is None
    assert owners.check(SITE, _birth("gw-new", "P-301")) is None
    assert owners.owner("P-301").gateway == "gw-new"  # type: ignore[union-attr]


def test_long_agent_ids_map_their_truncated_state_publisher_back() -> None:
    agent = "g" * 64
    owners = AssetOwners()
    assert owners.check(SITE, _birth(agent, agent, ["P-401"])) is None
    assert owners.check(SITE, _birth(agent, "P-401")) is None
    assert owners.check(SITE, good_reading(agent, 0, asset="P-401")) is None


def test_learnt_owners_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ownership, "MAX_LEARNT_OWNERS", 3)
    owners = AssetOwners()
    assert owners.check(SITE, _birth("gw-1", "gw-1", ["A-1", "A-2"])) is None
    refused = owners.check(SITE, _birth("gw-2", "gw-2"))
    assert refused is not None and "mqtt.gateways" in refused
