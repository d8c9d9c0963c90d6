"""Helpers shared by the benchmark scripts in `benchmarks/`.

`benchmarks/` is not a package: each script is run as
`PYTHONPATH=. .venv/bin/python benchmarks/<script>.py`, which puts
`benchmarks/` first on `sys.path`, so the scripts import `benchlib.<module>`.
"""
