"""yujing (预警): streaming IoT risk monitoring — MQTT in, graded alerts out."""

__version__ = "0.1.0"
