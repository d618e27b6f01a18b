"""Synthetic glossy scenes with ground truth (`nero-synth`), rendered with Mitsuba 3 on the CPU.

A procedural shiny object (sphere, torus knot, or a blob with concave dimples) with a principled BSDF sits at
`object_center` with bounding radius `object_radius` in a z-up world, optionally on a checkered floor and among
a few diffuse distractors, lit by a procedural HDR lat-long environment. Output folder:

    transforms.json, images/, masks/ (optional), sparse_pc.ply (optional)   the nerfstudio dataset (train views)
    gt/mesh.ply                    the object mesh in the world (input) frame
    gt/materials.json              base_color, metallic, roughness, shape, center, radius, conventions
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
