from pathlib import Path

from standardwebhooks.webhooks import Webhook

from identity.tenants import new_secret
from zixly.bench.ingest import SIGNED_TENANT, _prepare_signed
from zixly.bench.load import BODY, _script


def test_prepared_deliveries_are_each_signed_for_the_benchmark_tenant_with_an_id_of_their_own(tmp_path: Path) -> None:
    secret = new_secret()
    prepared = tmp_path / "signed.tsv"
    _prepare_signed(prepared, secret, 50)
    lines = [line.split("\t") for line in prepared.read_text().splitlines()]
    assert len(lines) == 50
    assert len({webhook_id for _, webhook_id, _, _ in lines}) == 50
    for tenant, webhook_id, stamp, signature in lines:
        assert tenant == SIGNED_TENANT
        headers = {"webhook-id": webhook_id, "webhook-timestamp": stamp, "webhook-signature": signature}
        Webhook(secret).verify(BODY, headers, json_parse=False)


def test_the_wrk_script_sends_the_prepared_requests_once_and_paces_only_when_asked(tmp_path: Path) -> None:
    saturating = _script(tmp_path / "signed.tsv", None)
    assert str(tmp_path / "signed.tsv") in saturating
    assert "prepared-requests-ran-out" in saturating
    assert "function delay" not in saturating
    assert "function delay() return 20.000 end" in _script(None, 20.0)
    assert "function request" not in _script(None, 20.0)
