# The Ruby twins of worker_app/classes.py: the same class names doing the same work, so a real
# Sidekiq 6.4 process (`sidekiq -r ./tests/ruby/jobs.rb`) and worker_app can run each other's jobs.
require "sidekiq"

# redis-rb 4.8 (Debian) warns on every BRPOP and SADD; the warnings would only slow Sidekiq down.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

ATTEMPTS_TTL = 7 * 24 * 3600

class NoopJob
  include Sidekiq::Worker

  def perform(*args)
  end
end

class SleepJob
  include Sidekiq::Worker

  def perform(seconds = 1, *args)
    sleep(seconds.to_f)
  end
end

class FailJob
  include Sidekiq::Worker

  def perform(times = 1, *args)
    key = "worker_app:attempts:#{jid}"
    attempt, _ = Sidekiq.redis { |conn| conn.multi { |tx| tx.incr(key); tx.expire(key, ATTEMPTS_TTL) } }
    raise "FailJob failure #{attempt} of #{times}" if attempt <= times.to_i
  end
end

class RecordJob
  include Sidekiq::Worker

  def perform(*args)
    Sidekiq.redis { |conn| conn.hincrby("worker_app:processed", jid, 1) }
  end
end

class SpawnJob
  include Sidekiq::Worker

  def perform(n = 1, *args)
    url = ENV["REDIS_PRODUCER_URL"] || ENV["REDIS_URL"]
    pool = ConnectionPool.new(size: 1) { Redis.new(url: url) }
    Sidekiq::Client.new(pool).push_bulk("class" => RecordJob, "args" => (0...n.to_i).map { |i| [jid, i] })
  end
end
