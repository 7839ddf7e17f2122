"""ifvit_core."""
