"""Who may do what: tenants and their webhook secrets, API tokens, callback tokens, the tenants' named secrets, and
the audit log. Operational tables: a replay of the log rebuilds none of them."""
