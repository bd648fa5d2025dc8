"""Scores of thesis Section 4.1.3 (boundary/occlusion maps) and instance-level picking scores."""
