"""The metrics that rank a network at initialisation: their registry, their computation on one
minibatch, sizes and rank correlations.
"""
