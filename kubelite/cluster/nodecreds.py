"""Node credentials: what a node agent needs from the cluster before it can join, minted from the
cluster CA.

- a client certificate CN `system:node:<name>`, O `system:nodes` (the identity upstream's Node
  authorizer expects), written as a self-contained kubeconfig: `<node data dir>/kubelet.kubeconfig`;
- for an agent that cannot read the cluster CA key (another machine), its streaming server's serving
  certificate for the node's addresses and the CA that signs API server client certificates, as
  files for `kubelite agent --tls-cert-file/--tls-private-key-file/--client-ca-file`.

On a single host the agent mints both itself from the server's PKI directory (`--pki-dir`). For a
remote node, run this module where the PKI lives and copy the output directory to the node:

    python -m kubelite.cluster.nodecreds --pki-dir /var/lib/kubelite/pki --node node-2 \\
        --server https://10.0.0.1:6443 --node-ip 10.0.0.2 --out ./node-2
    # on node-2: kubelite agent --name node-2 --kubeconfig node-2/kubelet.kubeconfig \\
    #     --tls-cert-file node-2/kubelet.crt --tls-private-key-file node-2/kubelet.key \\
    #     --client-ca-file node-2/ca.crt --node-ip 10.0.0.2

Nothing here talks to the API server; the CA key never leaves the PKI directory. Files are written
atomically, keys and kubeconfigs mode 0600.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubelite.cluster.kubeconfig import build_kubeconfig, write_kubeconfig
from kubelite.cluster.pki import Pki, issue_client_cert
from kubelite.lib.files import atomic_write

NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
KUBECONFIG_NAME = "kubelet.kubeconfig"
SERVING_CERT_NAME, SERVING_KEY_NAME, CA_NAME = "kubelet.crt", "kubelet.key", "ca.crt"


def node_user(node_name: str) -> str:
    if not node_name:
        raise ValueError("node name must not be empty")
    return f"{NODE_USER_PREFIX}{node_name}"


def kubeconfig_path(data_dir: Path) -> Path:
    """Where a node's kubeconfig lives in its data dir (the agent looks there by default)."""
    return Path(data_dir) / KUBECONFIG_NAME


def node_kubeconfig(pki: Pki, *, node_name: str, server: str) -> dict[str, Any]:
    """A kubeconfig for `server` authenticating as the node, with a freshly issued certificate."""
    cert, key = issue_client_cert(pki, common_name=node_user(node_name), organizations=[NODES_GROUP])
    return build_kubeconfig(server=server, ca_pem=pki.ca_pem(), user=node_user(node_name),
                            context=f"{node_user(node_name)}@kubelite", client_cert_pem=cert, client_key_pem=key)


def write_node_kubeconfig(pki: Pki, *, node_name: str, server: str, data_dir: Path) -> Path:
    """Issue the node's client certificate and write `<data_dir>/kubelet.kubeconfig`; its path."""
    path = kubeconfig_path(data_dir)
    write_kubeconfig(path, node_kubeconfig(pki, node_name=node_name, server=server))
    return path


@dataclass(frozen=True)
class ServingFiles:
    cert: Path
    key: Path
    client_ca: Path


def write_serving_files(pki: Pki, *, node_name: str, ips: list[str], directory: Path) -> ServingFiles:
    """The streaming server's certificate for `ips` and the node name, and the CA its clients (the
    API server) are verified against, written under `directory`."""
    from kubelite.agent.server.certs import issue_serving_cert

    cert, key = issue_serving_cert(pki, common_name=node_user(node_name), ips=ips, dns=[node_name])
    files = ServingFiles(directory / SERVING_CERT_NAME, directory / SERVING_KEY_NAME, directory / CA_NAME)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(files.key, key, 0o600)
    atomic_write(files.cert, cert, 0o644)
    atomic_write(files.client_ca, pki.ca_pem(), 0o644)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubelite.cluster.nodecreds",
                                     description="mint a node's credentials from the cluster CA")
    parser.add_argument("--pki-dir", type=Path, required=True, help="the server's PKI directory (holds ca.key)")
    parser.add_argument("--node", required=True, help="node name")
    parser.add_argument("--server", required=True, help="API server URL the node will use")
    parser.add_argument("--node-ip", action="append", default=[],
                        help="address(es) of the node's streaming server (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    args = parser.parse_args(argv)
    pki = Pki.at(args.pki_dir)
    path = write_node_kubeconfig(pki, node_name=args.node, server=args.server, data_dir=args.out)
    print(f"wrote {path}")
    if args.node_ip:
        files = write_serving_files(pki, node_name=args.node, ips=args.node_ip, directory=args.out)
        print(f"wrote {files.cert}, {files.key}, {files.client_ca}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
