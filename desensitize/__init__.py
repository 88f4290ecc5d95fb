"""Pure transformations over tables and text: Chinese identifier checks, recognizers,
profiling, policies, fingerprints, and the synthetic public data the demo, tests and
benchmarks use. Imports nothing of Keyong's."""
