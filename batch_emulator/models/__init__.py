"""State and logic of the local Batch service: accounts, pools, nodes, jobs and tasks (no HTTP here)."""
