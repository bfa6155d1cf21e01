"""Cluster building blocks against a real redis-server (issue 20): leases, the event stream, jobs once, configuration.

The three-node scenario with a PBX, PostgreSQL and SIGKILL is ``tests/test_cluster_nodes.py``.
"""

from __future__ import annotations

import asyncio
import types

import pytest

from twpcore.cluster.leases import Leases
from twpcore.cluster.node import ClusterNode
from twpcore.cluster.status import connect
from twpcore.cluster.streams import StreamTransport
from twpcore.config import ClusterConfig, Config
from twpcore.events import Event, EventBus
from twpcore.schema import ConfigErrors


async def until_true(predicate):
    while not predicate():
        await asyncio.sleep(0.01)


async def next_event(sub, timeout=5.0):
    return await asyncio.wait_for(sub.get(), timeout)


def test_without_a_cluster_section_nothing_changes():
    config = Config.from_dict({})
    assert config.cluster.redis is None
    from twpcore.app import Kernel

    kernel = Kernel.build(config)
    assert kernel.cluster is None and kernel.events.transport is None


@pytest.mark.parametrize(("table", "message"), [
    ({"redis": "http://x:6379", "node": "a"}, 'cluster: redis: expected a redis://, rediss:// or unix:// URL such as "redis://redis-host:6379/0", got "http://x:6379"'),
    ({"redis": "redis://u:s3cret@x:6379"}, 'cluster: node: expected a node name of letters, digits, "-" and "_"'),
    ({"redis": "redis://x", "node": "a b"}, "got 'a b'"),
    ({"redis": "redis://x", "node": "a", "lease_ttl": "0.2s"}, "cluster: lease_ttl: expected 1 s to 60 s, got 0.2 s"),
])
def test_a_bad_cluster_section_names_the_key_the_value_and_the_fix(table, message):
    with pytest.raises(ConfigErrors) as info:
        Config.from_dict({"cluster": table}, "twp.toml")
    assert message in str(info.value)
    assert "s3cret" not in str(info.value)


async def test_a_lease_has_one_holder_at_a_time_and_its_fencing_token_only_grows(redis_server):
    redis = connect(redis_server.url)
    a, b = Leases(redis, "t", "a", ttl=1.0), Leases(redis, "t", "b", ttl=1.0)
    held = await a.acquire("link", "paris")
    assert held is not None
    assert await b.acquire("link", "paris") is None
    assert await a.extend(held)
    # a stops extending (a crash, a pause): the lease runs out and b takes it with a higher token.
    await asyncio.sleep(1.1)
    taken = await b.acquire("link", "paris")
    assert taken is not None and taken.value.token > held.value.token
    # The old holder can neither extend nor give back what is no longer its own.
    assert not await a.extend(held)
    await a.release(held)
    assert (await b.read("link", ["paris"]))["paris"].node == "b"
    await b.release(taken)
    assert (await b.read("link", ["paris"]))["paris"] is None
    await redis.aclose()


async def test_events_reach_every_other_node_once_in_order_and_a_fenced_off_owner_is_refused(redis_server):
    redis_a, redis_b = connect(redis_server.url), connect(redis_server.url)
    bus_a, bus_b = EventBus(), EventBus()
    tokens = {"paris": 5}
    node_a = StreamTransport(redis_a, "t", "a", bus_a, lambda link: tokens.get(link, 0))
    node_b = StreamTransport(redis_b, "t", "b", bus_b, lambda link: 0)
    node_a.start()
    node_b.start()
    try:
        seen_a, seen_b = bus_a.subscribe(name="a"), bus_b.subscribe(name="b")
        await asyncio.sleep(0.3)  # the readers are at the end of the stream
        for n in range(3):
            bus_a.publish(Event(f"call.step{n}", {"device": "201", "link": "paris", "n": n}, 1, 2, frozenset({7})))
        got = [await next_event(seen_b) for _ in range(3)]
        assert [e.data["n"] for e in got] == [0, 1, 2]
        assert all(e.origin == "a" and e.user_ids == frozenset({7}) and e.company_id == 1 for e in got)
        assert [(await next_event(seen_a)).origin for _ in range(3)] == [None, None, None]  # delivered at home once, not echoed back
        # A node that lost the lease of "paris" without knowing it still publishes with token 4: refused.
        tokens["paris"] = 4
        bus_a.publish(Event("call.stale", {"device": "201", "link": "paris"}, 1, 2))
        bus_a.publish(Event("admin.user.created", {"id": 9}, 1))
        assert (await next_event(seen_b)).type == "admin.user.created"
        assert node_b.fenced == 1
    finally:
        await node_a.stop()
        await node_b.stop()
        await redis_a.aclose()
        await redis_b.aclose()


async def test_a_node_that_loses_redis_tells_its_subscribers_to_resync_and_follows_again(redis_server):
    redis_a, redis_b = connect(redis_server.url), connect(redis_server.url)
    bus_a, bus_b = EventBus(), EventBus()
    node_a = StreamTransport(redis_a, "t", "a", bus_a, lambda link: 0)
    node_b = StreamTransport(redis_b, "t", "b", bus_b, lambda link: 0)
    node_a.start()
    node_b.start()
    try:
        websocket = bus_b.subscribe(name="websocket client")
        await asyncio.sleep(0.3)
        redis_server.kill()
        resync = await next_event(websocket)
        assert resync.type == "system.resync" and "lost Redis" in resync.data["reason"]
        # Published while Redis is away: kept by node a, delivered once Redis is back.
        bus_a.publish(Event("admin.user.updated", {"id": 1}, 1))
        redis_server.start_again()
        later = await next_event(websocket, timeout=10)
        while later.type == "system.resync":  # the empty restarted Redis may also look like a gap
            later = await next_event(websocket, timeout=10)
        assert later.type == "admin.user.updated" and later.origin == "a"
        assert node_b.health()["connected"] and node_a.health()["dropped"] == 0
    finally:
        await node_a.stop()
        await node_b.stop()
        await redis_a.aclose()
        await redis_b.aclose()


async def test_a_job_runs_on_one_node_at_a_time_and_again_after_its_node_finished(redis_server):
    def node(name):
        config = ClusterConfig(redis=redis_server.url, node=name, lease_ttl=1.0)
        return ClusterNode(config, EventBus(), types.SimpleNamespace(instances={}), types.SimpleNamespace(links={}))

    a, b = node("a"), node("b")
    ran = []

    async def job(n, hold):
        async with n.once("retention") as mine:
            if mine:
                ran.append(n.node)
                await asyncio.sleep(hold)

    # a holds the job longer than a lease lives: its lease is extended meanwhile, so b never runs it at the same time.
    running = asyncio.create_task(job(a, 2.0))
    await asyncio.wait_for(until_true(lambda: ran == ["a"]), 5)
    await asyncio.sleep(1.3)  # past a's first lease time: only its extension keeps the job a's
    await job(b, 0)
    assert ran == ["a"]
    await running
    await job(b, 0)
    assert ran == ["a", "b"]
    await a.redis.aclose()
    await b.redis.aclose()


class FakeInstances:
    """The PBX link instances of one node, started and closed as the kernel's ``InstanceManager`` does."""

    def __init__(self, names):
        from twpcore.config import InstanceSpec
        from twpcore.instances import Instance
        from twpcore.kinds import InstanceState, Kind

        self.started, self.closed = [], []
        self.instances = {}
        for name in names:
            inst = Instance(InstanceSpec(Kind.PBX_DRIVER, name, "fake", f"pbx.links.{name}"), InstanceState.CONFIGURED)
            inst.obj = types.SimpleNamespace(close=self._closer(name))
            self.instances[(Kind.PBX_DRIVER, name)] = inst

    def _closer(self, name):
        async def close():
            self.closed.append(name)
        return close

    async def start_all(self):
        from twpcore.kinds import InstanceState

        for (_, name), inst in self.instances.items():
            if inst.state == InstanceState.CONFIGURED:
                inst.set(InstanceState.READY)
                self.started.append(name)

    def running(self):
        from twpcore.kinds import InstanceState

        return sorted(name for (_, name), inst in self.instances.items() if inst.state == InstanceState.READY)


async def test_links_spread_over_nodes_an_admin_moves_one_and_a_stopping_node_hands_its_links_over(redis_server):
    async def until(check, timeout=15.0):
        for _ in range(int(timeout / 0.05)):
            if check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("not reached in time")

    links = ["l1", "l2"]
    nodes = {}
    for name in ("a", "b"):
        released = []
        telephony = types.SimpleNamespace(links={}, release_link=lambda link, why, r=released: r.append(link))
        config = ClusterConfig(redis=redis_server.url, node=name, lease_ttl=1.0)
        nodes[name] = ClusterNode(config, EventBus(), FakeInstances(links), telephony)
    await asyncio.gather(*(n.start() for n in nodes.values()))
    a, b = nodes["a"], nodes["b"]
    try:
        # Each node serves one link; the other node has it on standby.
        await until(lambda: len(a.instances.running()) == 1 and len(b.instances.running()) == 1)
        first = a.instances.running()[0]
        assert b.instances.running() == [link for link in links if link != first]
        status = await a.status()
        assert {row["link"]: row["node"] for row in status["links"]} == {first: "a", b.instances.running()[0]: "b"}

        # An administrator moves a's link to b: a closes it, b starts it.
        await a.request_move(first, "b")
        await until(lambda: b.instances.running() == links)
        assert a.instances.running() == [] and first in a.instances.closed

        # b stops: it gives its leases back and a takes both links at once, with newer fencing tokens.
        tokens = {row["link"]: row["token"] for row in (await a.status())["links"]}
        await b.stop()
        await until(lambda: a.instances.running() == links, timeout=5)
        after = {row["link"]: row["token"] for row in (await a.status())["links"]}
        assert all(after[link] > tokens[link] for link in links)
    finally:
        await a.stop()
        if b._task is not None:
            await b.stop()


def test_twp_cluster_status_and_move_read_and_write_redis(tmp_path, redis_server, capsys):
    import time as _time

    import redis as sync_redis

    from twpcore.cli import main

    plain = tmp_path / "alone.toml"
    plain.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/twp.db"\n')
    with pytest.raises(SystemExit):
        main(["--config", str(plain), "cluster", "status"])
    assert "no [cluster] section: this server runs alone" in capsys.readouterr().err

    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/twp.db"\n[cluster]\nredis = "{redis_server.url}"\nnode = "a"\n')
    now_ms = int(_time.time() * 1000)
    r = sync_redis.Redis.from_url(redis_server.url)
    r.zadd("twp:nodes", {"a": now_ms})
    r.sadd("twp:links", "paris")
    r.set("twp:lease:link:paris", f"a|7|{now_ms - 4000}", px=3000)

    assert main(["--config", str(cfg), "cluster", "status"]) == 0
    out = capsys.readouterr().out
    assert "a             alive" in out and "paris         a                 7" in out

    assert main(["--config", str(cfg), "cluster", "move", "paris", "b"]) == 1
    assert "node 'b' is not alive (live nodes: a); start it or choose a live node" in capsys.readouterr().err
    assert main(["--config", str(cfg), "cluster", "move", "lyon", "a"]) == 1
    assert "PBX link 'lyon' is not served by the cluster (links: paris)" in capsys.readouterr().err
    assert main(["--config", str(cfg), "cluster", "move", "paris", "a"]) == 0
    assert r.get("twp:move:link:paris") == b"a"
    r.close()


async def test_a_server_alone_says_so_and_refuses_a_move_and_limited_admins_see_no_cluster(twp_app):
    server = await twp_app()
    admin = await server.admin()
    assert await admin.get("/api/v1/cluster", status=200) == {"enabled": False, "node": None, "nodes": [], "links": [], "jobs": []}
    body = await admin.post("/api/v1/cluster/links/paris/move", {"node": "b"}, status=409)
    assert "this server runs alone" in body["detail"] and "[cluster]" in body["detail"]
    limited = await server.admin(super_user=False)
    body = await limited.get("/api/v1/cluster", status=403)
    assert "only super users" in body["detail"]


async def test_the_health_of_a_cluster_node_names_it_for_super_users_only(twp_app, twp_config, redis_server):
    server = await twp_app({**twp_config, "cluster": {"redis": redis_server.url, "node": "solo", "lease_ttl": "1s"}})
    admin = await server.admin()
    for _ in range(100):  # the node says it is alive at its first tick
        cluster = (await admin.get("/api/v1/health", status=200))["cluster"]
        if cluster["nodes"] == ["solo"]:
            break
        await asyncio.sleep(0.05)
    assert cluster["node"] == "solo" and cluster["redis"] == "ok" and cluster["nodes"] == ["solo"]
    status = await admin.get("/api/v1/cluster", status=200)
    assert status["enabled"] and [n["node"] for n in status["nodes"]] == ["solo"]
    limited = await server.admin(super_user=False)
    assert "cluster" not in await limited.get("/api/v1/health", status=200)
