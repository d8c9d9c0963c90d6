"""Decoders (multi-scale feature builders) Model Garden lacks."""
