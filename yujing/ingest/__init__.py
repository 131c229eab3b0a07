"""Ingest: MQTT subscription, payload validation, dead letters, columnar batches onto the bus."""
