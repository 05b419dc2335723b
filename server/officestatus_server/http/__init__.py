"""The server's HTTP listener and what it serves: the Prometheus metrics at /metrics."""
