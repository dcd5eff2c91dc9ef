"""Search over accuracy and device tables: the exact multiple-choice knapsack (the whole
accuracy-latency frontier at once) and, for comparison, evolutionary and random search.

The front door is :func:`frontier`; every budget is a lookup on what it returns
(``frontier(acc, dev).best(budget_ms)``). No runtime is imported here: only numpy and
the tables.
"""

from .evolution import SearchResult, evolutionary_search, random_search
from .frontier import Frontier, FrontierPoint, frontier, read_frontier
from .problem import LIMITS, OBJECTIVES, Limits, Problem, SolverError, build_problem

__all__ = ["Frontier", "FrontierPoint", "frontier", "read_frontier", "SearchResult",
           "evolutionary_search", "random_search", "LIMITS", "OBJECTIVES", "Limits", "Problem",
           "SolverError", "build_problem"]
