"""Which gateway owns which asset: ingest stores an asset's data only from the gateway that owns it.

An owner is configured (``mqtt.gateways``: agent id -> site and assets) or learnt: the first
gateway whose birth announces an asset owns it until that gateway publishes the asset's death
(a clean shutdown), trust on first use. An asset nobody owns yet takes data from anyone (tools,
a simulator without births); configure the gateways to close that gap.

This is a consistency check on the ``publisher`` field of the payload, which the sender writes
itself: it stops a gateway's data, by mistake or on purpose, from landing in another gateway's
asset history, but authenticates nobody. Who may publish on an asset's topics at all is the
broker's ACL (``genedge broker acl``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.wire import BirthMessage, DeathMessage, Message

__all__ = ["MAX_LEARNT_OWNERS", "AssetOwners", "Owner", "state_publisher"]

#: Learnt owners kept at most: births announcing ever new asset ids cannot grow memory without bound.
MAX_LEARNT_OWNERS = 100_000


def state_publisher(agent_id: str) -> str:
    """The ``publisher`` of an agent's births and deaths (``edge_agent.publisher.ReliablePublisher.state_id``)."""
    return f"{agent_id}-state"[:64]


@dataclass(frozen=True)
class Owner:
    """The gateway (agent id) and site an asset belongs to."""

    gateway: str
    site: str
    configured: bool = False


class AssetOwners:
    """Asset -> owning gateway, configured or learnt from births; see the module docstring.

    Args:
        configured: asset id -> (site, gateway agent id), fixed for the life of the service.
    """

    def __init__(self, configured: Mapping[str, tuple[str, str]] | None = None) -> None:
        self._owners: dict[str, Owner] = {
            asset: Owner(gateway, site, configured=True) for asset, (site, gateway) in (configured or {}).items()
        }
        self._learnt = 0
        self._gateway_of_state: dict[str, str] = {}

    def owner(self, asset_id: str) -> Owner | None:
        return self._owners.get(asset_id)

    def check(self, site: str, message: Message) -> str | None:
        """Accept ``message`` (published on ``site``) or say why not; births claim, deaths release.

        Returns:
            ``None`` when the message may be stored, else the reason it may not (for the dead letter).
        """
        if isinstance(message, BirthMessage):
            return self._birth(site, message)
        gateway = self._gateway(message)
        refused = self._refusal(message.asset_id, site, gateway, message.publisher)
        if refused is None and isinstance(message, DeathMessage):
            owner = self._owners.get(message.asset_id)
            if owner is not None and not owner.configured and message.asset_id != gateway:
                del self._owners[message.asset_id]  # the asset's clean death: another gateway may claim it
                self._learnt -= 1
        return refused

    def _gateway(self, message: Message) -> str:
        """The gateway (agent id) behind a message's publisher: births and deaths come from ``<agent>-state``."""
        publisher = message.publisher
        if isinstance(message, BirthMessage | DeathMessage):
            return self._gateway_of_state.get(publisher, publisher.removesuffix("-state"))
        return publisher

    def _refusal(self, asset_id: str, site: str, gateway: str, publisher: str) -> str | None:
        owner = self._owners.get(asset_id)
        if owner is None or (owner.gateway == gateway and owner.site == site):
            return None
        how = "configured" if owner.configured else "announced in its birth"
        return (f"asset {asset_id!r} belongs to gateway {owner.gateway!r} on site {owner.site!r} ({how}); "
                f"got publisher {publisher!r} on site {site!r}")

    def _birth(self, site: str, birth: BirthMessage) -> str | None:
        # An agent's own birth names the agent as its asset and lists the agent's assets as channels.
        agent_birth = state_publisher(birth.asset_id) == birth.publisher
        gateway = birth.asset_id if agent_birth else self._gateway(birth)
        claims = [birth.asset_id, *birth.channels] if agent_birth else [birth.asset_id]
        for asset_id in claims:
            if (refused := self._refusal(asset_id, site, gateway, birth.publisher)) is not None:
                return refused
        new = [a for a in dict.fromkeys(claims) if a not in self._owners]
        if self._learnt + len(new) > MAX_LEARNT_OWNERS:
            return f"{self._learnt} learnt asset owners already (at most {MAX_LEARNT_OWNERS}); configure mqtt.gateways"
        if agent_birth:
            self._gateway_of_state[birth.publisher] = gateway
        self._claim(new, Owner(gateway, site))
        return None

    def _claim(self, assets: Iterable[str], owner: Owner) -> None:
        for asset_id in assets:
            self._owners[asset_id] = owner
            self._learnt += 1
