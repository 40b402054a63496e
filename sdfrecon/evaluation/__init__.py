"""Evaluation stage: takes a mesh and a reference (mesh or point cloud) and gives metrics
(Chamfer distances, F-scores, normal consistency, topology); also the screened Poisson
baseline and the clouds sampled from reference meshes that benchmarks reconstruct.
"""
