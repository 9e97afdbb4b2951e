import time, numpy as np, torch, sys
sys.path.insert(0, "/work/main/benchmarks")
from convert import poses
from amasskit.convert import Converter, SCHEDULES
from pathlib import Path
models = Path("/tmp/models")
data = poses(2, 64, seed=0)
