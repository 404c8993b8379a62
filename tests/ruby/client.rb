# Drives the real Sidekiq 6.4 client and API for the interop tests; prints JSON on stdout.
# Usage: ruby tests/ruby/client.rb COMMAND [ARGS...]   (Redis from REDIS_URL, as Sidekiq reads it)
require_relative "jobs"
require "sidekiq/api"
require "json"

def job_class(name) = Object.const_get(name)

command = ARGV.shift
result =
  case command
  when "push" # CLASS ARGS_JSON [COUNT]
    klass, args = job_class(ARGV[0]), JSON.parse(ARGV[1])
    (ARGV[2] || "1").to_i.times.map { klass.perform_async(*args) }
  when "schedule" # CLASS SECONDS ARGS_JSON
    [job_class(ARGV[0]).perform_in(ARGV[1].to_f, *JSON.parse(ARGV[2]))]
  when "processes"
    Sidekiq::ProcessSet.new.map { |p|
      {"identity" => p.identity, "busy" => p["busy"], "quiet" => p.stopping?,
       "concurrency" => p["concurrency"], "queues" => p["queues"], "pid" => p["pid"]}
    }
  when "quiet_all"
    Sidekiq::ProcessSet.new.each(&:quiet!)
    []
  when "retries"
    Sidekiq::RetrySet.new.map { |e|
      {"jid" => e.jid, "class" => e.klass, "args" => e.args, "queue" => e.queue,
       "error_class" => e["error_class"], "error_message" => e["error_message"],
       "retry_count" => e["retry_count"], "at" => e.at.to_f}
    }
  when "retry_all"
    Sidekiq::RetrySet.new.retry_all
    []
  when "stats"
    stats = Sidekiq::Stats.new
    {"processed" => stats.processed, "failed" => stats.failed, "enqueued" => stats.enqueued,
     "retry_size" => stats.retry_size, "dead_size" => stats.dead_size,
     "processes_size" => stats.processes_size, "workers_size" => stats.workers_size}
  else
    abort "unknown command #{command.inspect}"
  end
puts JSON.generate(result)
