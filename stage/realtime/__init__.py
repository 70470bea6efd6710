"""Keeping a show's process real-time: BLAS threads, thread priorities, the
garbage collector's schedule."""
