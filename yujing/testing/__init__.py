"""yujing's own test kit, in one place (bytewax style):

- `servers`: real servers on loopback (PostgreSQL, MQTT, the Kafka-protocol broker),
  started when the environment names none;
- `flow`: a whole pipeline in one process, with settings for a test;
- `rules`: readings as batches for the engine, written the way a timeline reads;
- `alerts`: alert timelines on a clock the test moves, and a real webhook receiver;
- `registry`: enterprise records with valid credit codes and divisions;
- `browser`: Debian's chromium for the screen's tests.
"""
