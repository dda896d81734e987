"""Images: references, a content-addressed OCI store, unpacked layer snapshots, import/export."""
