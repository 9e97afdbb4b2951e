"""SMPL-family body models: model files (no chumpy), staged forward passes, a joints-only path, a torch module.
(Planned: issue "Body models".)"""
