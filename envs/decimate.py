"""Lower-poly robot meshes for rendering: the Sawyer's 68k triangles dominate CPU (llvmpipe) render time.

Only meshes drawn by purely visual geoms (contype = conaffinity = 0) are simplified, so contacts and physics are
untouched. The compiled vertices are mapped back to the asset frame (MuJoCo re-centres meshes at compile time; sim.md
pitfall 10), simplified with fast-simplification, and written into a fresh MjSpec as user vertices and faces.
"""

from __future__ import annotations

from collections.abc import Callable

import mujoco
import numpy as np

MIN_FACES = 1500  # smaller meshes are not worth touching


def _rotate(quat: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Rotate points (N, 3) by a unit quaternion (w, x, y, z)."""
    matrix = np.zeros(9)
    mujoco.mju_quat2Mat(matrix, quat)
    return points @ matrix.reshape(3, 3).T


def visual_only_meshes(model: mujoco.MjModel) -> list[int]:
    """Ids of meshes with at least MIN_FACES faces that no colliding geom uses."""
    colliding, drawn = set(), set()
    for g in range(model.ngeom):
        if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH:
            continue
        mesh = int(model.geom_dataid[g])
        (colliding if model.geom_contype[g] or model.geom_conaffinity[g] else drawn).add(mesh)
    return sorted(m for m in drawn - colliding if model.mesh_facenum[m] >= MIN_FACES)


def decimate_spec(build_spec: Callable[[], mujoco.MjSpec], keep: float) -> mujoco.MjSpec:
    """A fresh spec from `build_spec()` whose large visual meshes keep about `keep` of their triangles."""
    import fast_simplification

    if not 0.0 < keep < 1.0:
        raise ValueError(f"decimate must be in (0, 1) (fraction of triangles kept), got {keep}")
    model = build_spec().compile()
    targets = visual_only_meshes(model)
    spec = build_spec()  # a fresh spec: reusing the compiled one breaks face/normal bookkeeping
    by_name = {mesh.name: mesh for mesh in spec.meshes}
    for mesh_id in targets:
        vstart, vnum = model.mesh_vertadr[mesh_id], model.mesh_vertnum[mesh_id]
        fstart, fnum = model.mesh_faceadr[mesh_id], model.mesh_facenum[mesh_id]
        verts = model.mesh_vert[vstart : vstart + vnum].astype(np.float64)
        faces = model.mesh_face[fstart : fstart + fnum].astype(np.int64)
        verts = _rotate(model.mesh_quat[mesh_id], verts) + model.mesh_pos[mesh_id]  # back to the asset frame
        new_verts, new_faces = fast_simplification.simplify(verts, faces, target_reduction=1.0 - keep)
        mesh = by_name[model.mesh(mesh_id).name]
        mesh.file = ""
        mesh.scale = [1.0, 1.0, 1.0]  # the compiled vertices are already scaled
        mesh.usernormal = []
        mesh.usertexcoord = []
        mesh.userfacetexcoord = []
        mesh.uservert = np.asarray(new_verts, np.float64).reshape(-1).tolist()
        mesh.userface = np.asarray(new_faces, np.int32).reshape(-1).tolist()
    return spec


def triangle_count(model: mujoco.MjModel) -> int:
    """Total mesh triangles in a compiled model (for reports and tests)."""
    return int(model.mesh_facenum.sum())
