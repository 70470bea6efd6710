"""The program mix: backing tracks on the show clock, per-singer vocal chains, and the sum
of both that every output carries (docs/mix.md)."""
