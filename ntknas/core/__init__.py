"""Foundations every layer uses: one-line errors, checks on user numbers, safe file writing, seeds,
threads, the terminal and strict JSON.
"""
