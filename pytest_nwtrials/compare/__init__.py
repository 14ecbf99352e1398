"""The diff engine, data only: values with tolerances, inputs, operation sequences, slices,
the root cause and run-to-run variation. No pytest in here.
"""
