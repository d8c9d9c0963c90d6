"""Studies: one command that trains, measures and reports a question."""
