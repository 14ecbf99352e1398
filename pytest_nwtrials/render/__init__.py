"""Text and HTML of what the comparison produced, and the gate's messages. No terminal
writer and no pytest in here.
"""
