exec(open("/tmp/exp/setup.py").read())
import cProfile, pstats
c = Converter.from_folder("smplh", "smplx", model_dir=models, **SCHEDULES["fast"])
p,b,t = data[0]
c.convert_poses(p[:2], betas=b)
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU]) as prof:
    r = c.convert_poses(p, betas=b, trans=t)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
