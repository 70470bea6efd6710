"""Voice backends beside the built-in parametric voice: each one a subpackage (``utau``)."""
