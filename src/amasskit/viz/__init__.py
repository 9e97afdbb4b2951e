"""Seeing the motion: rendered previews, the browser viewer, and plots. (Planned: issue "See the motion".)"""
