exec(open("/tmp/exp/setup.py").read())
import sys
p,b,t = data[0]
floor = 8.06334019192976
for mi in [2,3,4,5,6,8,10]:
    c = Converter.from_folder("smplh", "smplx", model_dir=models, max_iterations=mi, tolerance=1e-9)
    c.convert_poses(p[:2], betas=b)
    s=time.perf_counter(); r = c.convert_poses(p, betas=b, trans=t); e=time.perf_counter()-s
    print(mi, f"{len(p)/e:.1f} fps  {r.vertex_error_mean.mean()*1000:.4f} mm  +{r.vertex_error_mean.mean()*1000-floor:.4f}", r.iterations.mean(), flush=True)
