"""`llm-gateway simulate`: the real gateway over simulated providers on a virtual clock.

- `workload.py`: workload files (`sandbox/workloads/*.yaml`) and the seeded request stream
- `scenario.py`: provider latency, background errors and the day's incidents
- `clock.py`: the virtual clock and its discrete-event loop of greenlets
- `providers.py`: the simulated providers (wire formats, the catalog's limits, incidents)
- `streams.py`: a simulated stream in time (first content at the first token, the rest at the end)
- `engine.py`: containers built by `compose.build_core` over all of it; one outcome per request
- `report.py`: the seed's success metrics, the Markdown report and its plots
- `sweep.py`: the same workload at several daily volumes
- `cli.py`: the command
"""
