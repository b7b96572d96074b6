import base64

from zixly.stack.kafka_broker import new_cluster_id


def test_a_cluster_id_is_a_base64_uuid_that_never_starts_like_an_option() -> None:
    # One random id in 64 starts with "-"; two thousand of them would all but surely include some.
    ids = [new_cluster_id() for _ in range(2000)]
    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(cluster_id + "==")) == 16 for cluster_id in ids)
    assert len(set(ids)) == len(ids)
