"""slaproc events package."""
