"""`kubelite server`: the control plane in the foreground (for service managers and debugging)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=Path("/var/lib/kubelite"),
                        help="state, certificates and kubeconfig (default: %(default)s)")
    parser.add_argument("--datastore", default="", help="sqlite:///path or memory:// (default: sqlite in data dir)")
    parser.add_argument("--bind-address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--advertise-address", default="198.19.128.1")
    parser.add_argument("--service-cidr", default="198.19.0.0/17")
    parser.add_argument("--cluster-cidr", default="198.18.0.0/16", help="pod addresses, one block per node")
    parser.add_argument("--node-cidr-mask-size", type=int, default=24,
                        help="size of each node's pod block (24: 256 nodes of 254 pods in a /16)")
    parser.add_argument("--node-monitor-grace-period", type=float, default=40.0,
                        help="seconds without a heartbeat before a node is NotReady")
    parser.add_argument("--insecure-http", action="store_true",
                        help="serve plain HTTP without authentication (tests and debugging only)")
    parser.add_argument("--controllers", default="*",
                        help='controllers to run: "*" for all, names, "-name" to exclude; "" for none')
    parser.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler")
    parser.add_argument("--identity", default="", help="name in leader elections (default: host_pid)")
    parser.add_argument("--no-dns", action="store_true", help="do not serve the cluster DNS")
    parser.add_argument("--dns-listen", default="127.0.0.1:10053",
                        help="host:port list (comma-separated) the cluster DNS listens on, UDP and TCP")
    parser.add_argument("--dns-upstream", action="append", default=[], metavar="HOST[:PORT]",
                        help="resolver for names outside the cluster (repeatable; default: /etc/resolv.conf)")
    parser.add_argument("--no-dns-forward", action="store_true",
                        help="answer only cluster names; forward nothing to other resolvers (offline clusters)")
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--leader-elect-lease-duration", type=float, default=15.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-renew-deadline", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-retry-period", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--no-registry", action="store_true", help="do not serve the image registry")
    parser.add_argument("--registry-listen", default="127.0.0.1:5000",
                        help="host:port list (comma-separated) the image registry listens on (default: %(default)s)")
    parser.add_argument("--lb-pool", default="198.19.200.0/24", help="LoadBalancer addresses (default: %(default)s)")
    parser.add_argument("--host-network", action="store_true",
                        help="the nodes are network namespaces of this host: run the Service proxy and "
                             "routes to the pods on the host too")
    parser.add_argument("--host-proxy-table", default="kubelite-host",
                        help="nftables table of the host's Service proxy (default: %(default)s)")
    parser.add_argument("--host-routes-proto", type=int, default=211,
                        help="route protocol number marking the host's pod routes; clusters sharing a host "
                             "need different ones (default: %(default)s)")
    parser.add_argument("--log-level", default="info")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from kubelite.cluster.config import ServerConfig
    from kubelite.cluster.server import serve_forever

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(data_dir=args.data_dir, datastore=args.datastore, bind_address=args.bind_address,
                          port=args.port, advertise_address=args.advertise_address,
                          service_cidr=args.service_cidr, tls=not args.insecure_http,
                          cluster_cidr=args.cluster_cidr, node_cidr_mask_size=args.node_cidr_mask_size,
                          node_monitor_grace_period=args.node_monitor_grace_period,
                          dns=not args.no_dns, dns_listen=args.dns_listen,
                          dns_upstreams=tuple(args.dns_upstream), dns_forward=not args.no_dns_forward,
                          cluster_domain=args.cluster_domain,
                          controllers=args.controllers, scheduler=not args.no_scheduler, identity=args.identity,
                          leader_lease_duration=args.leader_elect_lease_duration,
                          leader_renew_deadline=args.leader_elect_renew_deadline,
                          leader_retry_period=args.leader_elect_retry_period, lb_pool=args.lb_pool,
                          host_network=args.host_network, host_proxy_table=args.host_proxy_table,
                          registry=not args.no_registry, registry_listen=args.registry_listen,
                          host_routes_proto=args.host_routes_proto)
    asyncio.run(serve_forever(config))
    return 0
