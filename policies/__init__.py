"""slaproc policies package."""
