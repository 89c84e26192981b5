"""Route a new task to the LLM most likely to do well on it, learned from benchmark results.

Implements Shnitzer et al., "Large Language Model Routing with Benchmark Datasets"
(arXiv 2309.15789) as small pure functions; the Snakemake workflow calls them.
"""

__version__ = "0.1.0"
