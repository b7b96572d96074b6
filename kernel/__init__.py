"""The shared kernel: settings, Kafka and Postgres clients, logging, metrics. Imports only ``schemas``."""
