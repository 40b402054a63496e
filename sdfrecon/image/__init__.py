"""Fitting networks to images (the SIREN paper's image experiments): from the pixels, the
gradient or the Laplacian; rendering at any size and range; Poisson blending.

It reuses the SIREN (:mod:`sdfrecon.siren`), the derivative helpers (:mod:`sdfrecon.diff`)
and the training loop (:mod:`sdfrecon.train`) of the reconstruction pipeline.
"""
