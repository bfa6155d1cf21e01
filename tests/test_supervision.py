"""Allocation of device supervisions to PBX links (guide 4.1)."""

import pytest

from twpcore.telephony.supervision import DeviceSlot, LinkSlot, allocate


def guide_links():
    # The guide's planning table: link 0 serves site 1.*, link 1 site 2.*, link 2 sites 3.* and 4.*.
    return [LinkSlot("link0", 500, ("1.*",)), LinkSlot("link1", 250, ("2.*",)), LinkSlot("link2", 200, ("3.*", "4.*"))]


def devices(site, n, start):
    return [DeviceSlot(str(start + i), site) for i in range(n)]


def test_guide_4_1_planning_table():
    """Site 1.* -> 500 on link 0; 2.* -> 250 on link 1; 3.* and 4.* -> 100 each on link 2."""
    links = guide_links()
    devs = devices("1.1", 500, 10000) + devices("2.1", 250, 20000) + devices("3.1", 100, 30000) + devices("4.2", 100, 40000)
    result = allocate(devs, links)
    per_link = {link.name: link.current for link in links}
    assert per_link == {"link0": 500, "link1": 250, "link2": 200}
    assert all(result[d.number] == "link0" for d in devs[:500])
    assert all(result[d.number] == "link2" for d in devs[750:])


def test_saturated_explicit_links_overflow_to_least_loaded_others():
    links = [LinkSlot("a", 2, ("1.*",)), LinkSlot("b", 10, ("2.*",)), LinkSlot("c", 10, ("3.*",))]
    allocate(devices("3.1", 5, 300), links)  # c is half full
    result = allocate(devices("1.1", 4, 100), links)
    assert [result[str(100 + i)] for i in range(4)] == ["a", "a", "b", "b"]  # a full -> b (emptier than c)


def test_implicit_site_goes_to_least_loaded_link():
    links = [LinkSlot("a", 10, ("1.*",), current=5), LinkSlot("b", 10, ("2.*",), current=1)]
    result = allocate([DeviceSlot("900", "9.9"), DeviceSlot("901", None)], links)
    assert result == {"900": "b", "901": "b"}


def test_no_room_left_means_unsupervised():
    links = [LinkSlot("a", 1)]
    assert allocate([DeviceSlot("1"), DeviceSlot("2")], links) == {"1": "a", "2": None}


def test_existing_assignments_are_kept():
    links = [LinkSlot("a", 10), LinkSlot("b", 10)]
    result = allocate([DeviceSlot("1"), DeviceSlot("2"), DeviceSlot("3")], links, current={"1": "b", "2": "b", "3": "b"})
    assert set(result.values()) == {"b"}


@pytest.mark.parametrize(
    "pattern,site,ok", [("1.*", "1.1", True), ("1.*", "10.1", False), ("2.1", "2.1", True), ("2.1", "2.10", False), ("*", "5.5", True)]
)
def test_site_patterns(pattern, site, ok):
    assert LinkSlot("x", 1, (pattern,)).serves(site) is ok
