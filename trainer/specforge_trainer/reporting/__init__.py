"""Step sinks: where a run's per-step reports go (metrics file, terminal, Kubernetes status)."""
