"""The append-only hash chain, Merkle checkpoints and proofs, verification and audit export
(DESIGN.md). Imports nothing of Keyong's. Built by issue 3."""
