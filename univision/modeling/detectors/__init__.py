"""Detectors Model Garden lacks (query-modulated RetinaNet)."""
