"""Where a world's state lives, and nothing of HTTP: the store's contract and the base every backend shares
(store.py), the backends (memory.py, sqlite.py, redis/), the registry that opens one per sandbox (backends.py) and
the JSON codec of stored records (codec.py). tests/test_layers.py keeps it so: nothing here imports sandbox.core,
the vendors, the control API or Flask."""
