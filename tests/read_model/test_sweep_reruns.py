import uuid

from read_model.sweep_reruns import SweepInputs, changed_inputs, rerun_request
from schemas.sweeps import SWEEP_JOB_TYPE

ORIGINAL = SweepInputs(
    job_id=uuid.UUID("00000000-0000-4000-8000-0000000000aa"),
    tenant_id="acme",
    correlation_id="c-1",
    status="COMPLETED",
    parameters={"tickers": ["AAPL", "MSFT"], "fees": 0.001},
    metadata={"desk": "rates"},
    prices={"AAPL": "a" * 64, "MSFT": "b" * 64},
    engine_version="0123456789abcdef (numpy 2.4.6, numba 0.62.1)",
    settings={"sweep_chunk_size": 1000, "sweep_top_cells": 5},
)


def test_a_rerun_is_the_same_request_of_the_same_tenant_as_a_new_job_that_names_its_original() -> None:
    request = rerun_request(ORIGINAL, "n1")
    assert request.job_id != ORIGINAL.job_id
    assert request.tenant_id == "acme"
    assert request.payload.job_type == SWEEP_JOB_TYPE
    assert request.payload.parameters == ORIGINAL.parameters
    assert request.payload.metadata == {"desk": "rates", "rerun_of": str(ORIGINAL.job_id)}
    # One job per nonce: a command retried with its nonce asks once.
    assert rerun_request(ORIGINAL, "n1").event_id == request.event_id
    assert rerun_request(ORIGINAL, "n2").job_id != request.job_id


def test_identical_inputs_change_nothing() -> None:
    assert changed_inputs(ORIGINAL, ORIGINAL) == []


def test_each_changed_input_is_named() -> None:
    again = SweepInputs(
        **{
            **ORIGINAL.__dict__,
            "parameters": {"tickers": ["AAPL", "MSFT"], "fees": 0.002},
            "prices": {"AAPL": "a" * 64, "MSFT": "c" * 64},
            "engine_version": "fedcba9876543210 (numpy 2.4.6, numba 0.62.1)",
            "settings": {"sweep_chunk_size": 500, "sweep_top_cells": 5},
        }
    )
    assert changed_inputs(ORIGINAL, again) == [
        "the request: fees",
        f"MSFT's prices: sha256 {'b' * 12}… → {'c' * 12}…",
        "the engine: 0123456789abcdef (numpy 2.4.6, numba 0.62.1) → fedcba9876543210 (numpy 2.4.6, numba 0.62.1)",
        "setting sweep_chunk_size: 1000 → 500",
    ]


def test_a_sweep_planned_before_engines_were_recorded_reports_its_engine_as_unknown() -> None:
    older = SweepInputs(**{**ORIGINAL.__dict__, "engine_version": None, "settings": {}})
    assert changed_inputs(older, ORIGINAL) == [
        f"the engine: not recorded → {ORIGINAL.engine_version}",
        "setting sweep_chunk_size: None → 1000",
        "setting sweep_top_cells: None → 5",
    ]
