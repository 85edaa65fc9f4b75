"""Benchmarks of durable_agents against pydantic-ai's `durable_exec`, the engines' floors and the plain agent.

Run `python -m benchmarks` (or `make bench`); see benchmarks/README.md. Kept import-free: Temporal's workflow
sandbox imports this package.
"""
