"""Point-cloud stage: takes a :class:`~sdfrecon.io.PointCloud` as read from a file and gives
one ready to fit: cleaned (outliers, duplicates), with normals estimated and consistently
oriented, and mapped into the unit cube by a :class:`~sdfrecon.cloud.normalize.Normalization`
that export inverts (so meshes come out in the input's coordinates).
"""
