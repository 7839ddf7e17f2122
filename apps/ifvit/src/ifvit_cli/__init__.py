"""ifvit command line."""
