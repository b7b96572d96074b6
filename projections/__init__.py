"""The projector: folds the job log into the Postgres read model."""
