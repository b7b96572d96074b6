"""The webhook receiver: validates integrators' requests and appends them to the log."""
