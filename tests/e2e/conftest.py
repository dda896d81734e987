"""Shared e2e fixtures: a one-node kubelite cluster on this host, driven through the real kubectl.

`NodeCluster` = an API server in-process (`ServerThread`: TLS, nodeipam + workload controllers +
garbage collector, scheduler) + one `kubelite agent --runtime runc` subprocess with its own data
dir, authenticating with node credentials minted from the cluster CA (`kubelite.cluster.nodecreds`,
CN system:node:<name>), its streaming server's certificate issued from the same CA, and the busybox
and httpd test images already in its image store.

Host changes, all undone at teardown: the node's InternalIP is a /32 on `lo` (198.19.254.0/24; the
API server reaches the agent's streaming server there, pods reach their node there); pods sit on a
bridge named for the cluster, with their own netns prefix and cgroup parent, addressed from a
cluster CIDR of their own. Teardown deletes the workloads and pods through the API and waits until
the runtime holds no sandbox, stops the agent by PID, runs `kubelite agent --cleanup` for whatever a
failed test left, asserts that nothing is left (`runc_fixtures.leftovers`: processes, mounts,
netns, veths, IP allocations, runc containers, cgroups; plus volumes and pod log directories), then
removes the bridge and the address.
`bench/pods.py` uses the same class.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubelite.agent.hostnode import NodePaths, probe_preflight
from kubelite.agent.runtime.runc import RuncConfig
from kubelite.agent.runtime.runc.cni import CniSettings
from kubelite.agent.runtime.runc.rootfs import mounts_under
from kubelite.agent.runtime.runc.sandbox import SandboxSettings
from kubelite.client import Client, Connection
from kubelite.client.resources import DEPLOYMENTS, NODES, PODS, REPLICASETS
from kubelite.cluster.nodecreds import write_node_kubeconfig
from kubelite.images.store import ImageStore
from kubelite.images.testimages import BUSYBOX, ensure_test_images
from tests import support
from tests.e2e.runc_fixtures import leftovers
from tests.integration.conftest import ServerThread

Obj = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0


@dataclass(frozen=True)
class NodeSpec:
    name: str = "e2e-node"
    ip: str = "198.19.254.10"
    cluster_cidr: str = "198.18.192.0/20"
    tag: str = "kle2e"  # bridge "<tag>0", netns prefix and cgroup parent "<tag>"
    controllers: str = "nodeipam,replicaset,deployment,garbagecollector"


def host_problems() -> list[str]:
    """Why this host cannot run a runc node (empty when it can)."""
    problems = probe_preflight(runc="runc", conmon="conmon", cni_dir=Path("/usr/lib/cni"))
    if not BUSYBOX.exists():
        problems.append(f"{BUSYBOX} not found: apt-get install -y busybox-static")
    missing = [t for t in ("curl", "iptables-save") if shutil.which(t) is None]
    if missing:
        problems.append(f"{', '.join(missing)} not found: apt-get install -y curl iptables")
    return problems


def wait_for(check: Callable[[], Any], *, timeout: float = TIMEOUT, interval: float = 0.1,
             what: str = "condition") -> Any:
    return support.wait_for(check, timeout=timeout, what=what, interval=interval)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], capture_output=True, check=False)


class AgentProcess:
    """`kubelite agent --runtime runc` as a subprocess; its output is appended to `log`."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.argv, self.log = argv, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


class NodeCluster:
    def __init__(self, tmp: Path, spec: NodeSpec) -> None:
        self.tmp, self.spec = tmp, spec
        self.server = ServerThread(tmp / "server", controllers=spec.controllers, scheduler=True,
                                   cluster_cidr=spec.cluster_cidr)
        self.paths = NodePaths(tmp / "node")
        self.bridge = f"{spec.tag}0"
        self.client: Client | None = None
        self.agent: AgentProcess | None = None

    # ----- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> NodeCluster:
        _ip("addr", "add", f"{self.spec.ip}/32", "dev", "lo")
        self.server.start()
        assert self.server.runtime.socket_path is not None
        self.client = Client(Connection.unix(self.server.runtime.socket_path), user_agent="e2e")
        ensure_test_images(ImageStore(self.paths.images))
        write_node_kubeconfig(self.server.runtime.pki, node_name=self.spec.name, server=self.server.runtime.url,
                              data_dir=self.paths.data_dir)
        self.agent = AgentProcess(self.agent_argv(), self.tmp / "agent.log")
        self.start_agent()
        return self

    def agent_argv(self, *extra: str) -> list[str]:
        s = self.spec
        return [sys.executable, "-m", "kubelite.cli.main", "agent", "--name", s.name, "--runtime", "runc",
                "--data-dir", str(self.paths.data_dir), "--kubeconfig", str(self.paths.kubeconfig),
                "--pki-dir", str(self.server.runtime.pki.directory), "--node-ip", s.ip, "--address", s.ip,
                "--streaming-port", "0", "--cni-bridge", self.bridge, "--netns-prefix", s.tag,
                "--cgroup-parent", s.tag, "--cluster-dns", self.server.config.dns_service_ip,
                "--proxy", "none", *extra]  # Services on the wire: tests/e2e/test_local_cluster.py

    def start_agent(self, timeout: float = TIMEOUT) -> None:
        assert self.agent is not None
        started = time.time()
        self.agent.start()

        def ready() -> bool:
            if self.agent is not None and self.agent.proc is not None and not self.agent_running():
                raise AssertionError(f"the agent exited ({self.agent.proc.returncode}):\n{self.agent.tail()}")
            node = self.get_node()
            conditions = {c["type"]: c for c in (node or {}).get("status", {}).get("conditions") or []}
            heartbeat = conditions.get("Ready", {}).get("lastHeartbeatTime") or ""
            fresh = heartbeat >= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started - 1))
            return bool(node and node["spec"].get("podCIDR") and fresh
                        and conditions.get("Ready", {}).get("status") == "True")
        wait_for(ready, timeout=timeout, what=f"node {self.spec.name} Ready with a podCIDR")

    def restart_agent(self, sig: int = signal.SIGTERM) -> None:
        assert self.agent is not None
        self.agent.stop(sig)
        self.start_agent()

    def stop(self) -> None:
        """Strict teardown (see the module docstring); raises if anything was left behind."""
        errors: list[str] = []
        try:
            if self.agent_running() and self.client is not None:
                try:
                    self.delete_workloads()
                except Exception as exc:
                    errors.append(f"deleting the workloads: {exc}")
            if self.agent is not None:
                self.agent.stop()
            try:
                self.cleanup_node()
                wait_for(self.nothing_left, timeout=10, what="the node to be clean")
            except Exception as exc:
                errors.append(f"{exc}; left behind: {self.leftovers()}")
        finally:
            if self.client is not None:
                self.server.call(self.client.close())
            self.server.stop()
            _ip("link", "delete", self.bridge)
            _ip("addr", "del", f"{self.spec.ip}/32", "dev", "lo")
        if errors:
            tail = self.agent.tail() if self.agent is not None else ""
            raise AssertionError("node cluster teardown: " + "; ".join(errors) + f"\nagent log:\n{tail}")

    def agent_running(self) -> bool:
        return self.agent is not None and self.agent.proc is not None and self.agent.proc.poll() is None

    def cleanup_node(self) -> None:
        result = subprocess.run([*self.agent_argv("--cleanup")], capture_output=True, text=True, cwd=REPO,
                                timeout=120)
        assert result.returncode == 0, f"kubelite agent --cleanup failed:\n{result.stdout}\n{result.stderr}"

    def delete_workloads(self) -> None:
        async def delete_all() -> None:
            assert self.client is not None
            for rt in (DEPLOYMENTS, REPLICASETS, PODS):
                for obj in (await self.client.list(rt))["items"]:
                    meta = obj["metadata"]
                    with contextlib.suppress(Exception):
                        await self.client.delete(rt, meta["name"], meta["namespace"], grace_period=0,
                                                 propagation="Background")
        self.call(delete_all())
        wait_for(lambda: not self.sandboxes(), timeout=TIMEOUT, what="the runtime to remove every pod")

    # ----- observation -------------------------------------------------------------------------------

    def call(self, coro: Any, timeout: float = TIMEOUT) -> Any:
        return self.server.call(coro, timeout)

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        assert self.client is not None
        return self.call(getattr(self.client, method)(*args, **kwargs))

    def get_node(self) -> Obj | None:
        with contextlib.suppress(Exception):
            return self.api("get", NODES, self.spec.name)  # type: ignore[no-any-return]
        return None

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.server.kubectl(*args, **kwargs)

    def apply(self, obj: Obj) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def pod(self, ns: str, name: str) -> Obj | None:
        with contextlib.suppress(Exception):
            return self.api("get", PODS, name, ns)  # type: ignore[no-any-return]
        return None

    def wait_pod(self, ns: str, name: str, check: Callable[[Obj], Any], *, timeout: float = TIMEOUT,
                 what: str = "") -> Obj:
        def done() -> Obj | None:
            pod = self.pod(ns, name)
            return pod if pod is not None and check(pod) else None
        return dict(wait_for(done, timeout=timeout, what=f"pod {ns}/{name}: {what or 'condition'}"))

    def sandboxes(self) -> list[str]:
        records = self.paths.runtime / "sandboxes"
        return sorted(p.name for p in records.glob("*.json")) if records.exists() else []

    def runtime_config(self) -> RuncConfig:
        """The agent's runtime configuration, for `leftovers`."""
        return RuncConfig(root=self.paths.runtime, log_root=self.paths.logs, cni=CniSettings(bridge=self.bridge),
                          sandbox=SandboxSettings(netns_prefix=self.spec.tag, cgroup_parent=self.spec.tag))

    def leftovers(self) -> dict[str, list[str]]:
        """What pods left on the host (runc_fixtures' census of the runtime) plus the kubelet's
        volume mounts and directories and the pods' log directories; empty when clean."""
        found = leftovers(self.runtime_config())
        found["volume mounts"] = mounts_under(self.paths.kubelet)
        found["pod dirs"] = sorted(str(p) for p in (self.paths.kubelet / "pods").glob("*"))
        found["pod log dirs"] = sorted(str(p) for p in self.paths.logs.glob("*"))
        return {k: v for k, v in found.items() if v}

    def nothing_left(self) -> bool:
        return not self.leftovers()


@contextlib.contextmanager
def running_node_cluster(tmp: Path, spec: NodeSpec | None = None) -> Iterator[NodeCluster]:
    cluster = NodeCluster(tmp, spec or NodeSpec())
    try:
        cluster.start()
    except BaseException:
        with contextlib.suppress(Exception):
            cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


def pod_ready(pod: Obj) -> bool:
    conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions") or []}
    return pod.get("status", {}).get("phase") == "Running" and conditions.get("Ready") == "True"


@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    problems = host_problems()
    if problems:
        pytest.fail("the node agent e2e tests cannot run here:\n  - " + "\n  - ".join(problems))
    with running_node_cluster(tmp_path_factory.mktemp("node-cluster")) as c:
        yield c


@pytest.fixture
def node_ns(node_cluster: NodeCluster) -> str:
    """A fresh namespace on the node cluster."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    node_cluster.kubectl("create", "namespace", name)
    return name
