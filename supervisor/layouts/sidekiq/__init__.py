"""Sidekiq's layout (6, 7 and 8): its keys and backlog."""
