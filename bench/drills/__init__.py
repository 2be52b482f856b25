"""Fault drills shared by the long fault suite (`python -m bench.faults`) and its fast parts in
tests/reliability: each drill breaks one dependency on purpose and checks what survived."""
