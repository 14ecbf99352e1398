"""Everything that touches noWorkflow's runtime: the child-process runner and what it records."""
