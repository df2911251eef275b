"""The ingest API: an HTTP front door to Kafka for systems that do not speak Kafka.

``POST /v1/events`` takes contract v1 events (one object or an array), checks them
with the contract's one classifier, and answers only after Kafka acknowledged every
accepted event. See ``docs/ingest.md``.
"""
