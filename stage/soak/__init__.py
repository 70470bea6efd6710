"""`livesinger soak`: the whole show under load, faults and malformed input."""
