"""PyTorch datasets, samplers and batch gathering over the store, exact under workers and ranks.
(Planned: issue "Loaders".)"""
