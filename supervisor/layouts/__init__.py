"""Queue systems, one subpackage per system: how each lays out its backlog on Redis.

Everything above a layout (the drain check before a toss, supervise's convergence, `status`,
the mover, auto-migrate) reads OLD and NEW only through it.
"""
