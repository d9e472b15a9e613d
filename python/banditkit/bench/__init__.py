"""`banditkit bench`: speed scenarios of `docs/benchmarks.md`, reported as same-run ratios.

Each topic module (`thompson`, `threads`, `logistic`, `exact`, `contextual`, `store`,
`ensemble`, `ope`, `serve`) exposes `run(quick: bool) -> list[Row]`; `report` turns the rows
into tables and BENCHMARKS.md.
"""
