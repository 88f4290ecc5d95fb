"""Generated data: synthetic government tables for the demo and benchmarks, and the labelled set
the detection quality is measured on. Fixtures, not product: only ``app`` (the demo), tests and
benchmarks import it.
"""
