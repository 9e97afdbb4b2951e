"""Pure operations on sequences: resampling by time, trimming, canonicalisation, mirroring and augmentation.
(Planned: issue "Prepare".)"""
