exec(open("/tmp/exp/setup.py").read())
from amasskit.convert._fit import FitState, evaluate
from amasskit.rotations import rotvec_to_rotmat
p,b,t = data[0]
fb = torch.as_tensor(np.load("/tmp/exp/floor_betas.npy"), dtype=torch.float32)
c = Converter.from_folder("smplh", "smplx", model_dir=models, max_iterations=1)
fm = c.fit_model
# build goal and init state like convert_poses
src=c.source
with torch.no_grad():
    pose = torch.as_tensor(p, dtype=torch.float32)
    R = rotvec_to_rotmat(pose)
    sb = torch.as_tensor(b, dtype=torch.float32)
    posed = src.with_shape(sb).with_rotmats(R, trans=torch.as_tensor(t, dtype=torch.float32))
    goal = c.transfer.apply(posed.vertices)[:, fm.mask]
    def init(beta):
        rel = torch.eye(3).repeat(len(R), 55, 1, 1)
        s_idx=[s for s,_ in c.joint_map]; t_idx=[q for _,q in c.joint_map]
        rel[:, t_idx] = R[:, s_idx]
        J0s = src.with_shape(sb).joints_rest[0]; J0d = fm.rest_joints(beta)[0]
        return FitState(rel, torch.as_tensor(t, dtype=torch.float32) + (J0s-J0d))
    def err(beta, st):
        return (evaluate(fm, beta, st, goal).residual.norm(dim=-1).mean(1).mean().item()*1000)
        f = posed_vertices(fm, fm.rest_vertices(beta), fm.rest_joints(beta), st)
        return (f.vertices-goal).norm(dim=-1).mean(1).mean().item()*1000
    floor_state = init(fb)
    floor_state = FitState(rotvec_to_rotmat(torch.as_tensor(np.load("/tmp/exp/floor_rv.npy"),dtype=torch.float32)), torch.as_tensor(np.load("/tmp/exp/floor_trans.npy"),dtype=torch.float32))
    print("floor", err(fb, floor_state))
    for beta_name, beta in [("floor", fb), ("init", c.initial_betas(sb))]:
        st = init(beta)
        print(beta_name, "start", err(beta, st))
        for it in range(1, 13):
            st, cost, its = fit_poses(fm, beta, goal, st, max_iterations=1, tolerance=0)
            print(beta_name, it, round(err(beta, st), 4))
