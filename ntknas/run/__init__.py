"""Long work on a study: the search loop, many workers, verification by training, the ranking
benchmark.
"""
