"""A run on one machine as the processes its pods would be: launcher, local redis-server, supervisor."""
