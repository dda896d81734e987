"""Cluster DNS: the Kubernetes DNS zone served from informers, other names forwarded upstream.

`DnsServer` (server.py) listens on UDP and TCP; `records.resolve` decides answers from a
`ClusterIndex` (index.py); `forward.Forwarder` asks the host's resolvers; `service.py` builds the
kube-dns Service.
"""
