"""Trading sweeps: planned into chunks on a work topic, run by any worker, collected into one result."""
