"""Every cost the caller is told (the header, the body, the cost report's CSV) is one function's digits."""

from __future__ import annotations

import csv
import io

from llm_gateway.tenancy.report import CSV_COLUMNS, to_csv


def test_costs_are_written_in_the_headers_eight_decimals_not_in_e_notation() -> None:
    """A model's day that cost $0.0000875 was written `8.75e-05` (Python's float repr): some
    spreadsheets read that as text. Costs go out as `x-gateway-cost-usd` tells them: 8 decimals."""
    row = dict.fromkeys(CSV_COLUMNS, 0) | {"date": "2026-11-30", "user": "ann", "model": "groq/x", "requests": 3,
                                           "cost_usd": 0.0000875}
    big = row | {"user": "bob", "cost_usd": 12.5}
    text = to_csv({"rows": [row, big]})
    assert "e-0" not in text
    read = list(csv.DictReader(io.StringIO(text)))
    assert [r["cost_usd"] for r in read] == ["0.00008750", "12.50000000"]
    assert read[0]["requests"] == "3"


def test_the_cost_header_never_says_less_than_zero_as_the_body_and_ledger_do() -> None:
    """The header formatted the cost as it came (`-0.00000000` for a -0.0), while the body's
    `usage.cost_usd` and the ledger clamp it at zero: every told cost is one function's digits."""
    from llm_gateway.api.served import served_headers, told_usd
    from llm_gateway.tenancy.usage import cost_e8

    for cost in (-0.0, -1e-12, 0.0000078, 1.5):
        header = served_headers("groq", "x", 1, cost, False, "r")["x-gateway-cost-usd"]
        assert float(header) == told_usd(cost) and int(header.replace(".", "")) == cost_e8(cost)
        assert not header.startswith("-")
