"""Differential privacy: planning a DP job from public facts, its cost and noise, its signed results
and model certificates, and the programs the sandbox runs for the DP job kinds.

Used by submission (planning), by the worker (signing) and inside the sandbox (the programs); it
imports only ``core`` of ours.
"""
