"""The native local stack: Kafka from Maven Central jars and Postgres from Debian's packages, no Docker."""
