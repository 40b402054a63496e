"""Fitting networks to images (the SIREN paper's image experiments): from the pixels, the
gradient or the Laplacian; rendering at any size and range; Poisson blending.

It reuses the SIREN (:mod:`sdfrecon.sdf.siren`), the derivative helpers (:mod:`sdfrecon.sdf.derivatives`)
and the training loop (:mod:`sdfrecon.sdf.train`) of the reconstruction pipeline.
"""
