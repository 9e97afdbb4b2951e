exec(open("/tmp/exp/setup.py").read())
c = Converter.from_folder("smplh", "smplx", model_dir=models)
fm = c.fit_model
print("Vm", len(fm.mask), "K", fm.skin_joint.shape, "groups", len(fm.groups), [len(g.joints) for g in fm.groups][:20])
print("threads", torch.get_num_threads())
p,b,t = data[0]
for name, kw in [("accurate", {}), ("fast", SCHEDULES["fast"])]:
    c = Converter.from_folder("smplh", "smplx", model_dir=models, **kw)
    c.convert_poses(p[:2], betas=b)
    s=time.perf_counter(); r = c.convert_poses(p, betas=b, trans=t); e=time.perf_counter()-s
    print(name, len(p)/e, r.vertex_error_mean.mean()*1000, r.iterations.mean())
c = Converter.from_folder("smplh", "smplx", model_dir=models, dtype=torch.float64, rounds=6, max_iterations=60, tolerance=1e-12)
s=time.perf_counter(); r = c.convert_poses(p, betas=b, trans=t); e=time.perf_counter()-s
print("floor", len(p)/e, r.vertex_error_mean.mean()*1000, r.iterations.mean())
np.save("/tmp/exp/floor_betas.npy", r.betas); np.save("/tmp/exp/floor_rv.npy", r.rel_rotvec); np.save("/tmp/exp/floor_trans.npy", r.trans)
