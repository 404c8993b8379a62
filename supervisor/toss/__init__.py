"""The start-up decision: who this task is, which Redis it takes, and the exec into the worker.

Data flows one way: `identity`/`ecs_metadata` say who the task is, `decide` (pure) turns
settings, identity and a view of OLD into a `Decision`, `selection` gathers that view (the only
I/O, and the only place here that imports `redis`), `execenv` writes the worker's environment,
and `entrypoint` is the `exec`/`toss` commands on top.
"""
