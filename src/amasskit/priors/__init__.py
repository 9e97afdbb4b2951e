"""Pose priors: Pose-NDF training data (nearest-neighbour distances on the pose manifold) and models. (Planned.)"""
