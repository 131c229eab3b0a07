"""API: the FastAPI app — auth, one route module per resource, the live alarm board."""
