"""Lower-poly robot meshes for rendering: the Sawyer's 68k triangles dominate CPU (llvmpipe) render time.

Physics never sees a simplified mesh: meshes of purely visual geoms (contype = conaffinity = 0) are simplified in
place, and a colliding geom keeps its full mesh but is moved to a hidden geom group while a massless, non-colliding
low-poly copy is drawn in its place. The compiled vertices are mapped back to the asset frame (MuJoCo re-centres
meshes at compile time; sim.md pitfall 10), simplified with fast-simplification, and written into a fresh MjSpec as
user vertices and faces.
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


HIDDEN_GROUP = 3  # not drawn by MuJoCo's default visual options


def large_meshes(model: mujoco.MjModel) -> tuple[list[int], list[int]]:
    """(visual-only, colliding) ids of drawn meshes with at least MIN_FACES faces."""
    colliding, drawn = set(), set()
    for g in range(model.ngeom):
        if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH or model.geom_group[g] >= HIDDEN_GROUP:
            continue
        mesh = int(model.geom_dataid[g])
        (colliding if model.geom_contype[g] or model.geom_conaffinity[g] else drawn).add(mesh)
    big = {m for m in drawn | colliding if model.mesh_facenum[m] >= MIN_FACES}
    return sorted(big - colliding), sorted(big & colliding)


def decimate_spec(build_spec: Callable[[], mujoco.MjSpec], keep: float) -> mujoco.MjSpec:
    """A fresh spec from `build_spec()` whose large visual meshes keep about `keep` of their triangles."""
    import fast_simplification

    if not 0.0 < keep < 1.0:
        raise ValueError(f"decimate must be in (0, 1) (fraction of triangles kept), got {keep}")
    model = build_spec().compile()
    visual, colliding = large_meshes(model)
    spec = build_spec()  # a fresh spec: reusing the compiled one breaks face/normal bookkeeping
    by_name = {mesh.name: mesh for mesh in spec.meshes}
    for mesh_id in visual + colliding:
        vstart, vnum = model.mesh_vertadr[mesh_id], model.mesh_vertnum[mesh_id]
        fstart, fnum = model.mesh_faceadr[mesh_id], model.mesh_facenum[mesh_id]
        verts = model.mesh_vert[vstart : vstart + vnum].astype(np.float64)
        faces = model.mesh_face[fstart : fstart + fnum].astype(np.int64)
        verts = _rotate(model.mesh_quat[mesh_id], verts) + model.mesh_pos[mesh_id]  # back to the asset frame
        new_verts, new_faces = fast_simplification.simplify(verts, faces, target_reduction=1.0 - keep)
        name = model.mesh(mesh_id).name
        if mesh_id in colliding:  # keep the full mesh for contacts; draw a copy
            mesh = spec.add_mesh(name=f"{name}_lamp_lowpoly")
            for geom in [g for g in spec.geoms if g.meshname == name]:
                _add_visual_copy(geom, mesh.name)
        else:
            mesh = by_name[name]
        mesh.file = ""
        mesh.scale = [1.0, 1.0, 1.0]  # the compiled vertices are already scaled
        mesh.usernormal = []
        mesh.usertexcoord = []
        mesh.userfacetexcoord = []
        mesh.uservert = np.asarray(new_verts, np.float64).reshape(-1).tolist()
        mesh.userface = np.asarray(new_faces, np.int32).reshape(-1).tolist()
    return spec


def _add_visual_copy(geom: mujoco.MjsGeom, mesh_name: str) -> None:
    """Hide `geom` from rendering and add a massless, non-colliding twin that draws `mesh_name` instead."""
    twin = geom.parent.add_geom(
        type=mujoco.mjtGeom.mjGEOM_MESH,
        meshname=mesh_name,
        pos=list(geom.pos),
        quat=list(geom.quat),
        contype=0,
        conaffinity=0,
        group=geom.group,
        rgba=list(geom.rgba),
        mass=0.0,
    )
    twin.alt = geom.alt  # same orientation however the XML wrote it (quat, euler, axis-angle ...)
    if geom.material:
        twin.material = geom.material
    geom.group = HIDDEN_GROUP


def drawn_triangles(model: mujoco.MjModel) -> int:
    """Mesh triangles drawn with MuJoCo's default visual options (hidden collision copies excluded)."""
    total = 0
    for g in range(model.ngeom):
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH and model.geom_group[g] < HIDDEN_GROUP:
            total += int(model.mesh_facenum[model.geom_dataid[g]])
    return total
