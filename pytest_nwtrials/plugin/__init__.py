"""Everything that imports pytest: the hooks, items, the ``nw_trial`` fixture, the gate,
recording and saving, xdist workers and the terminal summary.
"""
