from tests.ports import _ephemeral_low, reserve_ports


def test_reserved_runs_of_ports_lie_below_the_ephemeral_range_and_never_overlap() -> None:
    runs = [reserve_ports(3, step=2) for _ in range(20)]
    ports = [base + offset for base in runs for offset in (0, 2, 4)]
    assert len(set(ports)) == len(ports)
    assert max(ports) < _ephemeral_low()
