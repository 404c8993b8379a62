"""The auto-migrate lock on a real Redis: one holder, renew and release by owner only, expiry."""

from __future__ import annotations

import time

from supervisor.supervision.lease import Lease

KEY = "cointoss:test:lock"


def test_only_one_holder_at_a_time(old_redis):
    """SET NX: the second contender is refused while the first holds the lock."""
    first, second = (Lease(old_redis.client(), KEY, 10_000) for _ in range(2))
    assert first.acquire() is True
    assert second.acquire() is False
    assert old_redis.client().get(KEY).decode() == first.owner


def test_release_is_compare_and_delete(old_redis):
    """A non-owner's release does nothing; the owner's frees the lock for the next contender."""
    first, second = (Lease(old_redis.client(), KEY, 10_000) for _ in range(2))
    assert first.acquire()
    assert second.release() is False
    assert old_redis.client().exists(KEY) == 1
    assert first.release() is True
    assert second.acquire() is True


def test_lock_expires_and_a_late_owner_cannot_touch_the_next_holders_lock(old_redis):
    """After the expiry someone else may take it; the old owner can then neither renew nor release it."""
    first, second = Lease(old_redis.client(), KEY, 200), Lease(old_redis.client(), KEY, 60_000)
    assert first.acquire()
    time.sleep(0.4)
    assert second.acquire() is True
    assert first.renew() is False
    assert first.release() is False
    assert old_redis.client().get(KEY).decode() == second.owner


def test_renew_pushes_the_expiry_back(old_redis):
    """Renewing keeps the lock alive past its original TTL."""
    lease = Lease(old_redis.client(), KEY, 1000)
    assert lease.acquire()
    for _ in range(4):
        time.sleep(0.3)
        assert lease.renew() is True
    assert old_redis.client().pttl(KEY) > 0
