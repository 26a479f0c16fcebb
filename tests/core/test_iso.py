"""The one ISO 10816-1 / 20816-1 zone table and its lookup."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.iso import ISO_ZONE_LIMITS, MACHINE_CLASSES, ZONES, iso_zone, zone_letter


@pytest.mark.parametrize(
    ("v", "cls", "zone"),
    [
        (0.70, "I", "A"),
        (0.71, "I", "B"),
        (1.8, "I", "C"),
        (4.5, "I", "D"),
        (1.11, "II", "A"),
        (1.12, "II", "B"),
        (2.79, "II", "B"),
        (2.8, "II", "C"),
        (7.1, "II", "D"),
        (1.8, "III", "B"),
        (11.19, "III", "C"),
        (11.2, "III", "D"),
        (2.79, "IV", "A"),
        (7.1, "IV", "C"),
        (17.99, "IV", "C"),
        (18.0, "IV", "D"),
    ],
)
def test_boundaries_belong_to_the_upper_zone(v: float, cls: str, zone: str) -> None:
    assert zone_letter(iso_zone(v, cls)) == zone


def test_table_is_ordered_and_read_only() -> None:
    assert MACHINE_CLASSES == ("I", "II", "III", "IV") and ZONES == ("A", "B", "C", "D")
    for limits in ISO_ZONE_LIMITS.values():
        assert list(limits) == sorted(limits) and len(set(limits)) == 3
    # Larger machines on more rigid foundations tolerate more: every boundary grows with the class.
    for a, b in itertools.pairwise(MACHINE_CLASSES):
        assert all(x < y for x, y in zip(ISO_ZONE_LIMITS[a], ISO_ZONE_LIMITS[b], strict=True))
    with pytest.raises(TypeError):
        ISO_ZONE_LIMITS["II"] = (1.0, 2.0, 3.0)  # type: ignore[index]


def test_custom_limits_and_errors() -> None:
    plant = {"pumps": (2.0, 4.0, 8.0)}
    assert [iso_zone(v, "pumps", plant) for v in (1.9, 2.0, 7.9, 8.0)] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="machine_class must be one of"):
        iso_zone(1.0, "V")
    with pytest.raises(ValueError, match="zone index must be 0-3"):
        zone_letter(4)


@given(st.floats(min_value=0, max_value=100, allow_nan=False), st.sampled_from(MACHINE_CLASSES))
def test_zone_is_monotone_in_velocity(v: float, cls: str) -> None:
    z = iso_zone(v, cls)
    assert 0 <= z <= 3 and iso_zone(v * 1.5 + 0.01, cls) >= z
