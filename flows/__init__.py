"""driftloop flows."""
