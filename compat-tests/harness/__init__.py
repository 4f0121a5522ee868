"""Sluice compatibility-suite harness: broker launchers and a raw Kafka-wire helper."""
