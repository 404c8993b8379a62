"""`cointoss supervise`: the worker as a child of a PID-1-grade parent.

`supervise` is the loop; around it, one module per job: `child` (spawn), `signals` (forward),
`reaper` (zombies), `tree` (what is left of a worker's life), `restarts` (policy, pure),
`workerstats` (psutil samples), `oldwatch` and `convergence` (when OLD is drained, move to NEW),
`automigrate` and `lease` (one supervisor runs the mover).
"""
