"""The use cases, written once: both doors (the HTTP routers and the CLI commands) call these."""
