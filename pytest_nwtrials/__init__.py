"""pytest-nwtrials: experiments as pytest items, recorded as trials, gated against a baseline."""
