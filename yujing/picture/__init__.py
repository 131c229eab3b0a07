"""The regional picture: per-enterprise colour and online figures (一张表), the map (一张图),
alarm statistics by division × sector × level × period, and device events — read-only
queries over the register and the alert store, always inside the caller's scope."""
