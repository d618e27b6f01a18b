"""Synthetic glossy scenes with ground truth (`nero-synth`), rendered with Mitsuba 3 on the CPU.

A procedural shiny object (`shapes.py`: sphere, torus knots, tori, a genus-2 shape, a dimpled blob, a mug) with a
principled BSDF (one material, or two in stripes) sits at `object_center` with bounding radius `object_radius` in a
z-up world, optionally on a floor (`--floor`) and among a few diffuse distractors, lit by a procedural HDR lat-long
environment (`envmap.py`: day, overcast, indoor, dusk). `scene_set.py` names whole scenes (`--scene NAME`).
Output folder:

    transforms.json, images/, masks/ (optional), sparse_pc.ply (optional)   the nerfstudio dataset (train views)
    gt/mesh.ply                    the object mesh in the world (input) frame
    gt/materials.json              base_color, metallic, roughness, shape, center, radius, conventions
    gt/albedo.npy, roughness.npy, metallic.npy   per-vertex materials of gt/mesh.ply (two-material objects only)
    gt/test/                       held-out views (transforms.json, images/, masks/), same scene
    gt/relight/                    the test views of the object alone under the second environment
    gt/env_train.exr, gt/env_relight.exr   the environments (linear lat-long)

Conventions: cameras as in `nero_ns.synthetic.cameras` (nerfstudio camera-to-world, OpenGL camera, OPENCV
pinhole with the principal point at the image center); environments as in `nero_ns.synthetic.envmap`
(theta from world +z, phi = atan2(x, y); `sample_latlong` looks a direction up exactly as the renderer does).
"""

from nero_ns.synthetic.config import SyntheticSceneConfig
from nero_ns.synthetic.generator import generate_scene

__all__ = ["SyntheticSceneConfig", "generate_scene"]
