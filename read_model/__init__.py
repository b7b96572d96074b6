"""The read model's own logic, shared by the services that build it and those that read it: the fold of a job's
events into its row (the projector, a replay and time travel apply the same one), time travel through a job's
history, and how far the projections lag behind the log. Its tables are in ``schemas.read_model``."""
