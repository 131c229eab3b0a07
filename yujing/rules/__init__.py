"""Rules: the rule model and packs, the vectorised engine, per-series state and snapshots."""
