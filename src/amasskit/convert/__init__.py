"""Conversion of SMPL+H motion to SMPL-X parameters. (Planned.)"""
