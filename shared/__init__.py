"""What all clusterhub services share: the event log, the store, errors, settings and logging."""
