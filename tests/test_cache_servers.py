"""The cache's rendered config started by real servers: a primary, two replicas and three Sentinels, then a failover.

Runs in `make test` (about ten seconds): the Makefile's install step runs tools/install-redis.sh, which installs
Debian's redis-server and redis-sentinel (Redis 7.0; the pods run Valkey 8, see components/cache.py for what both
accept). What the test takes from the Cache component as rendered: the ConfigMap (valkey.conf, sentinel.conf and
the start script each pod's init container runs), the Secret (the generated password and the config lines carrying
it, the URL the services get) and the init container's env. What it rewrites is what Kubernetes would supply: the
addresses (127.0.0.1 instead of the pods' hostnames and the Sentinels' Service), the ports (free ones instead of
6379/26379, several servers share one host here) and the directories (temporary ones instead of the pods' volumes),
plus the client binary's name (redis-cli for valkey-cli). Every server listens on 127.0.0.1 only and is stopped at
the end, whatever happens.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from components import cache as cache_component
from components.cache import Cache, CacheArgs
from components.cache_config import CacheConfig
from tests.helpers import by_kind, one, register

CACHE = {
    "name": "sessions",
    "usedBy": ["api"],
    "replicas": 2,
    # The shortest detection the config allows, so the failover happens within seconds.
    "failover": {"sentinels": 3, "quorum": 2, "downAfterMilliseconds": 1000, "failoverTimeoutMilliseconds": 10000},
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
    "maxmemoryPolicy": "allkeys-lfu",
    "persistence": {"mode": "aof", "size": "1Gi"},
}
SERVER = shutil.which("redis-server")
NO_RETRY = Retry(NoBackoff(), 0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except (redis.RedisError, OSError) as error:
            last_error = error
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


class Rendered:
    """What the component gives the pods and the services."""

    def __init__(self, config: CacheConfig):
        resources = register(lambda: Cache("sessions", CacheArgs(cache=config, namespace="apps")))
        self.files = dict(one(resources, "ConfigMap")["data"])
        secret = one(resources, "Secret")["stringData"]
        self.password, self.url = secret["password"], secret["url"]
        self.files.update({key: value for key, value in secret.items() if key.endswith(".conf")})
        statefulsets = {s["metadata"]["name"]: s for s in by_kind(resources, "StatefulSet")}
        self.init_env = {
            name: {variable["name"]: variable.get("value") for variable in spec["spec"]["template"]["spec"]["initContainers"][0]["env"]}
            for name, spec in statefulsets.items()
        }


class Servers:
    """The started processes, each from a directory laid out like its pod's volumes."""

    def __init__(self, root: Path, rendered: Rendered):
        self.root, self.rendered = root, rendered
        self.processes: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}

    def start(self, node: str, role: str, port: int, primary_port: int, sentinel_ports: list[int]) -> None:
        pod = self.root / node
        source, auth, conf, data = (pod / part for part in ("config", "auth", "conf", "data"))
        for directory in (source, auth, conf, data):
            directory.mkdir(parents=True, exist_ok=True)
        # The ConfigMap and Secret volumes, with the addresses, ports and directories Kubernetes would supply.
        for name in (cache_component.SERVER_CONF, cache_component.SENTINEL_CONF, cache_component.START_SCRIPT):
            if name not in self.rendered.files:
                continue  # no Sentinels without failover
            text = self.rendered.files[name]
            text = re.sub(r"^bind .*$", "bind 127.0.0.1", text, flags=re.M)
            text = re.sub(rf"^port ({cache_component.VALKEY_PORT}|{cache_component.SENTINEL_PORT})$", f"port {port}", text, flags=re.M)
            text = re.sub(rf"^dir {cache_component.DATA_DIR}$", f"dir {data}", text, flags=re.M)
            text = re.sub(rf"^dir {cache_component.CONFIG_DIR}$", f"dir {conf}", text, flags=re.M)
            (source / name).write_text(text)
        for name in (cache_component.SERVER_AUTH_CONF, cache_component.SENTINEL_AUTH_CONF):
            if name in self.rendered.files:
                (auth / name).write_text(self.rendered.files[name])
        workload = "sessions-sentinel" if role == "sentinel" else "sessions"
        env = self.rendered.init_env[workload]
        assert set(env) >= {"ANNOUNCE_HOST", "PORT", "INITIAL_PRIMARY_HOST", "INITIAL_PRIMARY_PORT"}
        assert ("SENTINELS" in env) == ("sentinel.conf" in self.rendered.files)  # only with failover
        env = {
            **{key: value for key, value in env.items() if value is not None},
            "ANNOUNCE_HOST": "127.0.0.1",
            "PORT": str(port),
            "INITIAL_PRIMARY_HOST": "127.0.0.1",
            "INITIAL_PRIMARY_PORT": str(primary_port),
            "SENTINELS": " ".join(f"127.0.0.1:{p}" for p in sentinel_ports),
            "CONFIG_SOURCE": str(source),
            "AUTH_SOURCE": str(auth),
            "CONFIG_DIR": str(conf),
            "CACHE_PASSWORD": self.rendered.password,  # secretKeyRef in the pod
            "CLI": "redis-cli",
            "PATH": os.environ["PATH"],
        }
        subprocess.run(["sh", str(source / cache_component.START_SCRIPT), role], env=env, check=True, timeout=30, cwd=pod)
        command = [SERVER, str(conf / f"{role}.conf")] + (["--sentinel"] if role == "sentinel" else [])
        log = (pod / "server.log").open("ab")
        self.processes[node] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=pod)
        self.ports[node] = port
        wait_for(f"{node} to listen", lambda: socket.create_connection(("127.0.0.1", port), timeout=0.5).close() or True, 15)

    def stop(self, node: str) -> None:
        process = self.processes.pop(node)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop_all(self) -> None:
        for node in list(self.processes):
            self.stop(node)

    def client(self, node: str, **kwargs) -> redis.Redis:
        # No retries: a refused login is the answer, not a reason to try again with backoff (redis-py's default).
        return redis.Redis(host="127.0.0.1", port=self.ports[node], socket_timeout=2, decode_responses=True, retry=NO_RETRY, **kwargs)

    def log(self, node: str) -> str:
        return (self.root / node / "server.log").read_text(errors="replace")[-3000:]


@pytest.fixture
def servers(tmp_path):
    assert SERVER and shutil.which("redis-cli"), "redis-server/redis-cli missing: run tools/install-redis.sh (make test does)"
    started = Servers(tmp_path, Rendered(CacheConfig.model_validate(CACHE)))
    yield started
    started.stop_all()
    assert not started.processes


def test_rendered_config_survives_losing_the_primary(servers):
    rendered, password = servers.rendered, servers.rendered.password
    data_ports = [free_port() for _ in range(3)]
    sentinel_ports = [free_port() for _ in range(3)]
    nodes = ["sessions-0", "sessions-1", "sessions-2"]
    for node, port in zip(nodes, data_ports):
        servers.start(node, "server", port, data_ports[0], sentinel_ports)
    for index, port in enumerate(sentinel_ports):
        others = [p for p in sentinel_ports if p != port]  # in the cluster: the Sentinels' Service, never itself
        servers.start(f"sessions-sentinel-{index}", "sentinel", port, data_ports[0], others)

    # Auth always: a client without the password, or with a wrong one, is refused by data nodes and Sentinels.
    for node in ("sessions-0", "sessions-1", "sessions-sentinel-0"):
        with pytest.raises(redis.AuthenticationError):
            servers.client(node).ping()
        with pytest.raises(redis.AuthenticationError):
            servers.client(node, password="not-the-password").ping()
    primary = servers.client("sessions-0", password=password)
    assert primary.ping()
    # maxmemory derived from the 128Mi limit with headroom (aof: 60%), the eviction policy from the config.
    assert int(primary.config_get("maxmemory")["maxmemory"]) == int(128 * 2**20 * 0.6)
    assert primary.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lfu"
    assert primary.config_get("appendonly")["appendonly"] == "yes"
    # min-replicas-to-write 1: the primary takes writes once a replica acknowledges it (INFO counts the good ones).
    wait_for("two replicas in sync", lambda: primary.info("replication").get("min_slaves_good_slaves") == 2)
    for node in nodes[1:]:
        assert servers.client(node, password=password).info("replication")["role"] == "slave"

    # A client configured as the services are: the URL from the Secret (the Sentinels' Service is the three here).
    url = urlparse(rendered.url)
    assert url.scheme == "redis+sentinel" and url.password == password
    master_name = url.path.strip("/").split("/")[0]
    assert master_name == "sessions"
    sentinel = Sentinel(
        [("127.0.0.1", port) for port in sentinel_ports],
        sentinel_kwargs={"password": url.password, "socket_timeout": 1},
        password=url.password,
        socket_timeout=2,
        decode_responses=True,
    )
    watcher = servers.client("sessions-sentinel-0", password=password)
    wait_for(
        "the Sentinels to know every replica and each other",
        lambda: len(watcher.sentinel_slaves(master_name)) == 2 and len(watcher.sentinel_sentinels(master_name)) == 2,
    )
    assert sentinel.discover_master(master_name) == ("127.0.0.1", data_ports[0])
    sentinel.master_for(master_name).set("session:42", "alice")
    wait_for("the write on every replica", lambda: all(servers.client(n, password=password).get("session:42") == "alice" for n in nodes[1:]))

    # The primary dies: a replica is promoted, and the same client finds it and keeps reading and writing.
    servers.stop("sessions-0")
    promoted = wait_for(
        "a replica promoted",
        lambda: (address := sentinel.discover_master(master_name)) != ("127.0.0.1", data_ports[0]) and address,
        30,
    )
    assert promoted[1] in data_ports[1:], promoted
    new_primary = next(node for node, port in zip(nodes, data_ports) if port == promoted[1])
    wait_for("the promoted node to say it is the primary", lambda: servers.client(new_primary, password=password).info("replication")["role"] == "master")
    client = sentinel.master_for(master_name)
    assert client.get("session:42") == "alice"
    wait_for("writes through the new primary", lambda: client.set("session:43", "bob"), 15)
    with pytest.raises(redis.AuthenticationError):
        servers.client(new_primary).get("session:43")

    # The old primary's pod restarts: its start script asks the Sentinels and it rejoins as a replica, not as a
    # second, empty primary.
    servers.start("sessions-0", "server", data_ports[0], data_ports[0], sentinel_ports)
    rejoined = servers.client("sessions-0", password=password)
    wait_for(
        "the old primary to replicate from the new one",
        lambda: (info := rejoined.info("replication"))["role"] == "slave" and info["master_port"] == promoted[1] and info["master_link_status"] == "up",
        30,
    )
    assert rejoined.get("session:43") == "bob"
    assert sentinel.discover_master(master_name) == promoted


def test_a_single_node_cache_starts_from_its_rendered_config(tmp_path):
    """Without failover: no Sentinel to ask, the node starts as the primary; its URL is a plain redis:// URL."""
    config = CacheConfig.model_validate(
        {**{k: v for k, v in CACHE.items() if k not in ("replicas", "failover")}, "persistence": {"mode": "rdb", "size": "1Gi"}}
    )
    servers = Servers(tmp_path, Rendered(config))
    try:
        port = free_port()
        servers.start("sessions-0", "server", port, port, [])
        url = urlparse(servers.rendered.url)
        assert url.scheme == "redis" and url.port == cache_component.VALKEY_PORT
        local_url = servers.rendered.url.replace(f"{url.hostname}:{url.port}", f"127.0.0.1:{port}")
        client = redis.Redis.from_url(local_url, decode_responses=True, retry=NO_RETRY)
        assert client.set("k", "v") and client.get("k") == "v"
        assert client.info("replication")["role"] == "master"
        assert client.config_get("save")["save"] == "900 1 300 10 60 10000"
        with pytest.raises(redis.AuthenticationError):
            servers.client("sessions-0").get("k")
    finally:
        servers.stop_all()
