"""driftloop data."""
