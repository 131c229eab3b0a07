"""yujing's own test kit: real servers on loopback, started when none is given."""
