"""kubectl logs / exec / attach / port-forward through the API server to a node agent's streaming
server, end to end with the real kubectl: a server (scheduler, node IPAM, workload controllers)
and one hollow node in-process whose kubelet serves streaming on 127.0.0.1 with a serving cert
from the cluster CA. The hollow runtime's exec runs commands on this host, attach talks to a
`cat`-like console, port-forward reaches an echo server (see kubelite.agent.runtime.fake_streaming).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import socket
import ssl
import struct
import subprocess
import termios
import time
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from kubelite.agent.config import KubeletConfig, NodeConfig
from kubelite.agent.host import KubeletHost
from kubelite.agent.kubelet import Kubelet
from kubelite.agent.runtime.fake import FakeRuntime
from kubelite.agent.server.app import StreamingServer
from kubelite.agent.server.certs import from_cluster_pki
from kubelite.client import Client, Connection
from kubelite.client.resources import NODES, PODS
from tests import support
from tests.integration.conftest import KUBECTL, ServerThread

Obj = dict[str, Any]
TIMEOUT = 30.0
NODE = "stream-0"


wait_for = partial(support.wait_for, timeout=TIMEOUT, interval=0.05)


class Cluster:
    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.client = Client(Connection.from_kubeconfig(server.kubeconfig), user_agent="kubelet/stream-test")
        config = KubeletConfig(renew_interval=1.0)
        self.runtime = FakeRuntime(NODE)
        self.kubelet = Kubelet(self.client, NodeConfig(name=NODE, internal_ip="127.0.0.1"), self.runtime,
                               config=config)
        self.kubelet.streaming = StreamingServer(tls=from_cluster_pki(server.runtime.pki), host="127.0.0.1",
                                                 port=0)
        self.host = KubeletHost(self.client, [self.kubelet], config=config)

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.server.call(getattr(self.client, method)(*args, **kwargs))

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.server.kubectl(*args, **kwargs)

    def run_pod(self, ns: str, name: str, **container: Any) -> Obj:
        spec = {"name": "app", "image": "busybox:1.36", **container}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
               "spec": {"containers": [spec], "terminationGracePeriodSeconds": 1}}
        self.kubectl("apply", "-f", "-", input=json.dumps(pod))
        return self.wait_running(ns, name)

    def wait_running(self, ns: str, name: str) -> Obj:
        def running() -> Obj | None:
            pod = self.api("get", PODS, name, ns)
            return pod if (pod.get("status") or {}).get("phase") == "Running" else None
        return dict(wait_for(running, what=f"pod {name} Running"))

    async def remove_sandboxes(self) -> None:
        """A stopped kubelet leaves its pods running; take the hollow ones down (echo servers, files)."""
        for uid in list(self.runtime.pods):
            await self.runtime.remove_sandbox(uid)

    def write_log(self, pod: Obj, text: str, container: str = "app") -> None:
        async def write() -> None:
            self.runtime.write_log(pod["metadata"]["uid"], container, text.encode())
        self.server.call(write())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    server = ServerThread(tmp_path_factory.mktemp("streaming"), controllers="nodeipam,replicaset,deployment",
                          scheduler=True).start()
    cluster = Cluster(server)
    try:
        server.call(cluster.host.start())
        wait_for(lambda: cluster.api("get", NODES, NODE)["spec"].get("podCIDR"), what="a podCIDR")
        yield cluster
    finally:
        server.call(cluster.host.stop())
        server.call(cluster.remove_sandboxes())
        server.call(cluster.client.close())
        server.stop()


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name




# ----- node ----------------------------------------------------------------------------------------

def test_node_advertises_its_streaming_port(cluster: Cluster) -> None:
    node = cluster.api("get", NODES, NODE)
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    assert port == cluster.kubelet.streaming.port and port != 10250  # type: ignore[union-attr]


def test_agent_only_serves_the_api_server(cluster: Cluster) -> None:
    port = cluster.kubelet.node_config.kubelet_port
    pki = cluster.server.runtime.pki
    context = ssl.create_default_context(cafile=str(pki.ca_cert))

    def status_of(ctx: ssl.SSLContext) -> int:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /containerLogs/default/x/y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return int(tls.recv(100).split()[1])

    assert status_of(context) == 401  # no client certificate
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    assert status_of(context) == 403  # a valid certificate, but not the API server's


# ----- logs ----------------------------------------------------------------------------------------

def test_logs_tail_timestamps_limit(cluster: Cluster, ns: str) -> None:
    cluster.run_pod(ns, "web")
    out = cluster.kubectl("logs", "web", "-n", ns).stdout.splitlines()
    assert out[0] == 'hollow container "app" started' and out[1] == "image docker.io/library/busybox:1.36"
    assert len(out) == 3
    assert cluster.kubectl("logs", "web", "-n", ns, "--tail=2").stdout.splitlines() == out[1:]
    stamped = cluster.kubectl("logs", "web", "-n", ns, "--timestamps", "--tail=1").stdout.splitlines()
    assert len(stamped) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z " + re.escape(out[2]),
                                              stamped[0]), stamped
    assert cluster.kubectl("logs", "web", "-n", ns, "--limit-bytes=7").stdout == "hollow "
    assert cluster.kubectl("logs", "web", "-n", ns, "--since=1h").stdout.splitlines() == out
    previous = cluster.kubectl("logs", "web", "-n", ns, "--previous", check=False)
    assert previous.returncode != 0
    assert 'previous terminated container "app" in pod "web" not found' in previous.stderr


def test_logs_follow_streams_then_ends_with_the_container(cluster: Cluster, ns: str) -> None:
    pod = cluster.run_pod(ns, "tailed")
    proc = cluster.server.popen_kubectl("logs", "-f", "tailed", "-n", ns)
    try:
        lines = support.LineReader(proc.stdout, timeout=TIMEOUT)
        lines.wait_for("started")
        cluster.write_log(pod, "first new line\n")
        lines.wait_for("first new line")
        began = time.monotonic()
        cluster.write_log(pod, "second new line\n")
        lines.wait_for("second new line")
        assert time.monotonic() - began < 2
        cluster.kubectl("delete", "pod", "tailed", "-n", ns, "--wait=false")
        assert proc.wait(timeout=TIMEOUT) == 0  # the container stopped, so the stream ended
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_follower_that_leaves_releases_the_agent(cluster: Cluster, ns: str) -> None:
    cluster.run_pod(ns, "left")
    streaming = cluster.kubelet.streaming
    assert streaming is not None
    proc = cluster.server.popen_kubectl("logs", "-f", "left", "-n", ns)
    try:
        support.LineReader(proc.stdout, timeout=TIMEOUT).wait_for("started")
        assert streaming.open_connections >= 1
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: streaming.open_connections == 0, timeout=5, what="the agent to drop the follow")


def test_logs_of_a_deployment(cluster: Cluster, ns: str) -> None:
    cluster.kubectl("create", "deployment", "hello", "-n", ns, "--image=nginx:1.27", "--replicas=2")
    wait_for(lambda: len([p for p in cluster.api("list", PODS, ns)["items"]
                          if p["status"].get("phase") == "Running"]) == 2, what="2 pods Running")
    result = cluster.kubectl("logs", "deployment/hello", "-n", ns)
    assert result.stdout.startswith('hollow container "nginx" started\nimage docker.io/library/nginx:1.27\n')
    assert re.search(r"Found 2 pods, using pod/hello-", result.stderr), result.stderr


# ----- exec ----------------------------------------------------------------------------------------

def test_exec_exit_code(cluster: Cluster, ns: str) -> None:
    cluster.run_pod(ns, "box")
    result = cluster.kubectl("exec", "box", "-n", ns, "--", "sh", "-c", "echo hi; echo oops >&2; exit 3",
                             check=False)
    assert (result.returncode, result.stdout) == (3, "hi\n"), result
    assert "oops" in result.stderr and "command terminated with exit code 3" in result.stderr
    ok = cluster.kubectl("exec", "box", "-n", ns, "--", "sh", "-c", "echo $HOSTNAME")
    assert ok.stdout == "box\n"


def test_exec_process_dies_with_its_client(cluster: Cluster, ns: str) -> None:
    cluster.run_pod(ns, "sleeper")
    proc = cluster.server.popen_kubectl("exec", "sleeper", "-n", ns, "--", "sh", "-c", "echo pid=$$; exec sleep 300")
    try:
        pid = int(support.LineReader(proc.stdout, timeout=TIMEOUT).wait_for(r"pid=(\d+)").group(1))
    finally:
        proc.kill()
        proc.wait()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    wait_for(gone, timeout=10, what=f"the exec'd process {pid} to be killed")


def test_exec_stdin(cluster: Cluster, ns: str) -> None:
    cluster.run_pod(ns, "cat")
    text = "".join(f"line {i}\n" for i in range(2000))
    result = cluster.kubectl("exec", "-i", "cat", "-n", ns, "--", "sh", "-c", "cat; echo done", input=text)
    assert result.stdout == text + "done\n"


def test_exec_tty(cluster: Cluster, ns: str) -> None:
    cluster.run_pod(ns, "term")
    args = [KUBECTL, f"--kubeconfig={cluster.server.kubeconfig}", f"--cache-dir={cluster.server.cache_dir}",
            "exec", "-it", "term", "-n", ns, "--", "sh", "-c", SIZE_SCRIPT]
    output, status = run_in_pty(args, rows=33, cols=101, typed=b"abc\r",
                                env={**os.environ, "HOME": str(cluster.server.config.data_dir)})
    assert status == 0, output
    assert "TTY-OK" in output and "size=33 101" in output and "got-abc" in output, output


# kubectl sends the terminal size beside stdin, not before it: wait (bounded) until it applied
SIZE_SCRIPT = ("test -t 0 && echo TTY-OK; read x; for i in $(seq 100); do s=$(stty size); "
               "[ \"$s\" != '0 0' ] && break; sleep 0.05; done; echo size=$s; echo got-$x")


def run_in_pty(args: list[str], *, rows: int, cols: int, typed: bytes, env: dict[str, str]) -> tuple[str, int]:
    """Run `args` with a terminal of rows x cols as its stdio; type `typed` once it printed TTY-OK."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execvpe(args[0], args, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    output, typed_yet, deadline = b"", False, time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            if not typed_yet and b"TTY-OK" in output:
                os.write(fd, typed)
                typed_yet = True
    finally:
        os.close(fd)
        _, raw = os.waitpid(pid, 0)
    return output.decode(errors="replace"), os.waitstatus_to_exitcode(raw)


# ----- attach --------------------------------------------------------------------------------------

def test_attach_with_stdin(cluster: Cluster, ns: str) -> None:
    cluster.run_pod(ns, "console", stdin=True, stdinOnce=True)
    result = cluster.kubectl("attach", "-i", "console", "-n", ns, input="ping\npong\n")
    assert result.stdout == "ping\npong\n"
    # what went to the console's stdin came back on its stdout, which is its log too
    assert cluster.kubectl("logs", "console", "-n", ns, "--tail=2").stdout == "ping\npong\n"


# ----- port-forward --------------------------------------------------------------------------------

def test_port_forward_echo(cluster: Cluster, ns: str) -> None:
    cluster.run_pod(ns, "echo", ports=[{"containerPort": 8080}])
    proc = cluster.server.popen_kubectl("port-forward", "pod/echo", "-n", ns, "0:8080")
    try:
        port = int(support.LineReader(proc.stdout, timeout=TIMEOUT).wait_for(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080").group(1))
        for message in (b"hello through the tunnel", os.urandom(300_000)):
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
                sock.sendall(message)
                sock.shutdown(socket.SHUT_WR)
                received = b""
                while chunk := sock.recv(65536):
                    received += chunk
            assert received == message
        assert proc.poll() is None  # the forward survives its connections
    finally:
        proc.terminate()
        proc.wait(timeout=TIMEOUT)
    streaming = cluster.kubelet.streaming
    assert streaming is not None
    wait_for(lambda: streaming.open_connections == 0, timeout=5, what="the tunnel to the agent to close")


# ----- bad input -----------------------------------------------------------------------------------

def _raw(cluster: Cluster, path: str, headers: dict[str, str] | None = None) -> tuple[int, Obj]:
    import http.client

    pki = cluster.server.runtime.pki
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    conn = http.client.HTTPSConnection("127.0.0.1", cluster.server.config.port, context=context, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_exec_errors(cluster: Cluster, ns: str) -> None:
    cluster.run_pod(ns, "target")
    base = f"/api/v1/namespaces/{ns}/pods/target/exec?command=true&stdout=true"
    code, status = _raw(cluster, base)
    assert (code, status["reason"], status["message"]) == (400, "BadRequest", "Upgrade request required")
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "v5.channel.k8s.io"}
    code, status = _raw(cluster, base + "&container=nope", upgrade)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == "container nope is not valid for pod target"
    code, status = _raw(cluster, f"/api/v1/namespaces/{ns}/pods/missing/exec?command=true", upgrade)
    assert (code, status["reason"], status["message"]) == (404, "NotFound", 'pods "missing" not found')
    # kubectl itself refuses an unknown container before calling the server
    result = cluster.kubectl("exec", "target", "-n", ns, "-c", "nope", "--", "true", check=False)
    assert result.returncode == 1 and "container nope is not valid for pod target" in result.stderr
    code, status = _raw(cluster, f"/api/v1/namespaces/{ns}/pods/target/log?tailLines=-1")
    assert (code, status["reason"]) == (422, "Invalid") and "tailLines" in status["message"]


def test_exec_into_a_stopped_container(cluster: Cluster, ns: str) -> None:
    pod = cluster.run_pod(ns, "stopped")
    cluster.server.call(cluster.runtime.stop_container(pod["metadata"]["uid"], "app", grace_seconds=0))
    result = cluster.kubectl("exec", "stopped", "-n", ns, "--", "true", check=False)
    assert result.returncode == 1, result
    assert result.stderr == 'error: unable to upgrade connection: container not found ("app")\n'  # as upstream
