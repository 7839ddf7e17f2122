"""ifvit_convert."""
