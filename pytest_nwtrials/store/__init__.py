"""The local trial store and the named baselines on disk: their layout, records, reading,
atomic writing, locking and garbage collection. No pytest in here.
"""
