"""Tools around the engine that are neither domain logic nor an outside system: the synthetic data
generator (`polysnipe generate`)."""
