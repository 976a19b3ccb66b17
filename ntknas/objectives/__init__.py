"""What a search optimises: candidates built and seeded from a configuration, the budget, the space's
reference, the objective object.
"""
