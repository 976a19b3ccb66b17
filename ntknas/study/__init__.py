"""A study in its storage: settings, storage URLs, opening and resuming, the records of trials,
heartbeats, samplers.
"""
