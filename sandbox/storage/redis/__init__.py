"""The Redis backend: the store (store.py), a transaction's held writes (pending.py), the server-side scripts
(scripts.py), a world's lock (lock.py), the read cache kept current by the change feed (cache.py) and the
connection (client.py)."""
