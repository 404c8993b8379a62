"""`cointoss demo`: the whole migration on one machine, with embedded Redis servers.

`runner` drives it; `plan` (pure) turns options and `ecs/` into a plan, `taskdef` and
`rollout_plan` read the ECS files, `fleet` runs the tasks, `workload` the jobs, `display` and
`chart` show it, `summary` judges it, `embedded_redis` starts the servers (the tests use it too).
"""
