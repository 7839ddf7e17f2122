"""ifvit_train."""
