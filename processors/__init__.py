"""The workers: Faust agents that run requested jobs and emit their lifecycle events."""
