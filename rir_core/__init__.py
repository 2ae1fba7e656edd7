"""RIR-EBT-GRC: Recursion in Recursion on ListOps (Ray Chowdhury & Caragea, NeurIPS 2023)."""
