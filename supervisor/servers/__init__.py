"""What a Redis server is and allows: its facts, its refusals, and which server a client reaches.

Every supported server (Redis 6.2 to 8.x, Valkey 7.2 to 9.x, ElastiCache's restricted builds)
is asked directly, in the way each of them answers, instead of parsing one server's INFO.
"""
