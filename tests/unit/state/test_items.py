"""The state table's item codecs (`state/items.py`, their one owner)."""

from __future__ import annotations


def test_breaker_items_round_trip_through_their_codec() -> None:
    """`cb#` items (both breaker layers store and expose this shape) decode to the same record."""
    from aws_lambda_powertools.utilities.circuit_breaker.persistence.record import CircuitStateRecord
    from aws_lambda_powertools.utilities.circuit_breaker.states import CircuitState

    from llm_gateway.state.items import breaker_item, decode_breaker

    record = CircuitStateRecord(name="cb#groq", state=CircuitState.HALF_OPEN, failure_count=3, opened_at=10,
                                half_open_owner="me", probe_lease_expiry=40, expiry_timestamp=99)
    item = breaker_item(record)
    assert item == {"pk": "cb#groq", "state": "HALF_OPEN", "failure_count": 3, "opened_at": 10,
                    "half_open_owner": "me", "probe_lease_expiry": 40, "expires_at": 99}
    assert vars(decode_breaker(item)) == vars(record)
    assert decode_breaker({"pk": "cb#groq", "state": "NOT_A_STATE"}) is None
    assert decode_breaker({"state": "OPEN"}) is None
