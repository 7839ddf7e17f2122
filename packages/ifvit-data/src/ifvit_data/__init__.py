"""ifvit_data."""
