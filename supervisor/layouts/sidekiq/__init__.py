"""Sidekiq's layout (6, 7 and 8; see reference/sidekiq-layout.md): its keys and backlog."""
