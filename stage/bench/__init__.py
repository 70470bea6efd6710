"""Benchmarks of the running show, one module per `livesinger bench` target."""
