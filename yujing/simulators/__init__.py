"""Device fleets, scenarios with ground truth, a checker and a load generator (`yujing simulate`).

Everything here speaks the public contracts (MQTT payloads, the HTTP API) only; nothing in
yujing imports this package.
"""
