"""slaproc streams package."""
