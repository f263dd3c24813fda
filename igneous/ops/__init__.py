"""Pure compute: numpy in, numpy out. No storage, no queues."""
