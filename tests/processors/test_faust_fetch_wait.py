from types import SimpleNamespace

from faust.transport.drivers import aiokafka as faust_aiokafka

from kernel.settings import Settings
from processors import faust_fetch_wait
from processors.app import create_app


async def test_the_worker_consumer_lets_the_broker_hold_an_empty_fetch_for_100_ms_not_faust_s_fixed_1500() -> None:
    app = create_app(Settings())
    thread = SimpleNamespace(app=app, consumer=SimpleNamespace(in_transaction=False), _assignor=None)
    transport = SimpleNamespace(url=[app.conf.broker[0]], default_port=9092)
    consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer(thread, transport)
    assert consumer._fetch_max_wait_ms == faust_fetch_wait.FETCH_MAX_WAIT_MS == 100
    upstream = faust_fetch_wait._UPSTREAM_CREATE(thread, transport)
    assert upstream._fetch_max_wait_ms == 1500, "upstream still waits 1.5 s; when this fails, the module can go"
