"""SDF stage: takes a normalized cloud (points and normals in the unit cube, torch tensors)
and gives a trained SIREN signed distance function, its checkpoint, and the mesh of its zero
level set (marching cubes, still in the normalized frame).
"""
