"""driftloop configs."""
