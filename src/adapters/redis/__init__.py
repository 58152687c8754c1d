"""The Redis Streams bus: market-channel frames and external signals from `ingest` to the engines."""
