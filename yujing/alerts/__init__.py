"""Alerts: the alert model and lifecycle, storage of alerts and readings, and the feeds out."""
