"""Tagged values encoded and decoded by type (JSON, .npy, Parquet, models) with content-addressed
blobs. No pytest in here.
"""
