"""Training-time scripts, not in the wheel: run them as `python -m tools.<name>`."""
