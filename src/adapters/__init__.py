"""One package per outside system, each behind a core port."""
