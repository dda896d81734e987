"""The node agent's streaming server: container logs, exec, attach and port-forward, as the
kubelet serves them to the API server (`app.StreamingServer`). Protocol codecs: `crilog` (CRI log
files), `wsstream` (WebSocket channel protocol v5), `spdy` (SPDY/3.1 frames)."""
