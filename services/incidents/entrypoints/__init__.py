"""Entrypoints of the incidents service: consumer, API server, CLI commands."""
