"""Search over accuracy and device tables: the exact multiple-choice knapsack (the whole
accuracy-latency frontier at once) and, for comparison, evolutionary and random search.

No runtime is imported here: only numpy and the tables.
"""

from .exact import (Frontier, FrontierPoint, build_frontier, compute_frontier, frontier, solve,
                    solve_many)
from .evolution import SearchResult, evolutionary_search, random_search
from .problem import LIMITS, OBJECTIVES, Limits, Problem, SolverError, build_problem

__all__ = ["Frontier", "FrontierPoint", "build_frontier", "compute_frontier", "frontier", "solve",
           "solve_many", "SearchResult", "evolutionary_search", "random_search", "LIMITS",
           "OBJECTIVES", "Limits", "Problem", "SolverError", "build_problem"]
