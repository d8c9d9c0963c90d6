"""Metrics Model Garden lacks (query-AP, WSOL)."""
