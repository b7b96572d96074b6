"""Looking at dead letters and sending chosen ones back, for operators (``zixly dead-letters``).

A dead-lettered job comes back as a new job (same type, parameters and correlation id, a new job id) and its old
job gets a DeadLetterResubmitted event saying by whom and as what: both facts are in the log. A record that could
not be decoded goes back to its topic byte for byte, for a worker that has since learnt to read it.
"""

import getpass
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import TopicPartition

from kernel import dead_letters as dlq
from kernel.kafka import make_consumer, make_producer
from kernel.settings import Settings
from schemas.codec import UndecodableEvent, decode, encode
from schemas.events import (
    DeadLetterResubmitted,
    DeadLetterResubmittedPayload,
    JobRequested,
    JobRequestedPayload,
    follow_up,
)


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    def header(self, name: str) -> str:
        return self.headers.get(name, b"").decode(errors="replace")

    @property
    def request(self) -> JobRequested | None:
        try:
            event = decode(self.value)
        except UndecodableEvent:
            return None
        return event if isinstance(event, JobRequested) else None


async def read_dead_letters(settings: Settings) -> list[DeadLetter]:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(settings.dead_letter_topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        letters: list[DeadLetter] = []
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=2000)).get(tp, []):
                letters.append(DeadLetter(record.offset, record.key, record.value, dict(record.headers or ())))
        return letters
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Resubmitted:
    letter: DeadLetter
    new_job_id: uuid.UUID | None
    """None for a record sent back as it was."""


async def resubmit(
    settings: Settings, letters: list[DeadLetter], reason: str, progress: Callable[[str], None] = lambda _: None
) -> list[Resubmitted]:
    producer = make_producer(settings)
    await producer.start()
    operator = getpass.getuser()
    done = []
    try:
        for letter in letters:
            old = letter.request
            if old is None:
                topic = letter.header(dlq.ORIGINAL_TOPIC) or settings.job_events_topic
                headers = [(k, v) for k, v in letter.headers.items() if not k.startswith(dlq.HEADER_PREFIX)]
                headers.append(("resubmitted_from_dead_letter", str(letter.offset).encode()))
                await producer.send_and_wait(topic, value=letter.value, key=letter.key, headers=headers)
                done.append(Resubmitted(letter, None))
                progress(f"dead letter {letter.offset}: sent back to {topic} as it was")
                continue
            new = JobRequested(
                tenant_id=old.tenant_id,
                job_id=uuid.uuid4(),
                correlation_id=old.correlation_id,
                producer="operator",
                payload=JobRequestedPayload(
                    job_type=old.payload.job_type,
                    parameters=old.payload.parameters,
                    metadata={**old.payload.metadata, "resubmitted_from": str(old.job_id)},
                ),
            )
            audit = follow_up(
                old,
                DeadLetterResubmitted,
                producer="operator",
                payload=DeadLetterResubmittedPayload(
                    new_job_id=new.job_id, dead_letter_offset=letter.offset, operator=operator, reason=reason
                ),
            )
            for event in (audit, new):
                key, value, headers = encode(event)
                await producer.send_and_wait(settings.job_events_topic, value=value, key=key, headers=headers)
            done.append(Resubmitted(letter, new.job_id))
            progress(f"dead letter {letter.offset}: job {old.job_id} resubmitted as {new.job_id}")
        return done
    finally:
        await producer.stop()
