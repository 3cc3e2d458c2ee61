"""Support tools: trace a call from a caller number and a time, explain it, write the ticket."""
