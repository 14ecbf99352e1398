"""What noWorkflow recorded, read out of its database into plain records: operations and the
dependency graph (value, mutation and control edges). No pytest in here.
"""
