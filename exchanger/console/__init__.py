"""The operators' web console: dashboard, messages, dead letters, routes and reports, served by the daemon."""
