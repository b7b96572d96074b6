"""Job handlers: one module per job type, registered in ``registry``."""
