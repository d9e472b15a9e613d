"""`banditkit bench`: speed scenarios of `spec/benchmarks.md`, reported as same-run ratios.

Each topic module (`thompson`, `logistic`, `exact`, `contextual`, `store`) exposes
`run(quick: bool) -> list[Row]`; `report` turns the rows into tables and BENCHMARKS.md.
"""
