"""A Sidekiq-compatible worker and producer in Python.

It reads and writes Sidekiq's Redis layout (6.4 to 8.1) byte for byte, so a Ruby Sidekiq process
and this worker can share queues. It never imports `supervisor`: like a real Sidekiq process it only reads
`REDIS_URL`, `REDIS_PRODUCER_URL` and `WORKER_*` from its environment.
"""
