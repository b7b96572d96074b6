"""The topics the project owns, created explicitly: broker auto-creation is off everywhere we run."""

from dataclasses import dataclass, field

from kernel.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def project_topics(settings: Settings) -> list[TopicSpec]:
    return [
        TopicSpec(
            name=settings.job_events_topic,
            partitions=settings.topic_partitions,
            # The event stream is the source of truth: it is never expired.
            configs={"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"},
        ),
        TopicSpec(
            name=settings.retries_topic,
            partitions=settings.topic_partitions,
            # Attempts waiting for their time: a week covers any backoff.
            configs={"retention.ms": str(7 * 24 * 3600 * 1000), "cleanup.policy": "delete"},
        ),
        TopicSpec(
            name=settings.dead_letter_topic,
            partitions=1,
            # Kept until an operator has dealt with them; one partition keeps them in the order they failed.
            configs={"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"},
        ),
        TopicSpec(
            name=settings.sweep_chunks_topic,
            partitions=settings.topic_partitions,
            # Work items, not facts: a week covers any backlog; results live on the event stream.
            configs={"retention.ms": str(7 * 24 * 3600 * 1000), "cleanup.policy": "delete"},
        ),
    ]
