"""The pure domain core: no I/O, no wall clock, no global randomness. Only stdlib and attrs."""
