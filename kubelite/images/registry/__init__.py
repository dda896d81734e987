"""The cluster's OCI distribution registry (see server.py)."""
