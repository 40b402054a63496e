"""Image stage, beside the reconstruction: takes an image (H, W, C) in [0, 1] (a file or one
of scikit-image's) and gives a network fitted to its pixels, gradient or Laplacian, with
renders at any size and range, PSNR/SSIM and Poisson blends (:mod:`~sdfrecon.image.runs`
writes them). It reuses the SIREN (:mod:`sdfrecon.sdf.siren`), the derivatives
(:mod:`sdfrecon.sdf.derivatives`) and the training loop (:mod:`sdfrecon.sdf.train`); it needs
no point clouds and no marching cubes.
"""
