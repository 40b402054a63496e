"""The hypernetwork: observed pixels -> the weights of one SIREN per image (`sdfrecon hyper`).

config (options), data (image sets and masks), model (encoder + hypernetwork), train,
complete (one image from a subset of its pixels), baselines, files (the command's outputs).
"""
