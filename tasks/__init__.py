"""driftloop tasks."""
