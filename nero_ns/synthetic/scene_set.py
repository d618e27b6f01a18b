"""The named scene set of `nero-synth --scene NAME --seed K`: objects of several genera and thicknesses, materials
from mirror to rough, several lights and floors, so that defaults are judged on more than one or two scenes.

A named scene fixes what is in the picture (shape, materials, environment, floor, distractors); the seed picks
everything random (environment maps, cameras, floor texture, distractor placement, points, render noise); image
size, views and samples stay free (the benchmarks and tests set them). `scene_config(name, seed)` is the whole
definition: nothing else about a named scene is stored anywhere. Subsets: `quick` (a few scenes, for a session)
and `full` (every kind of case, for decisions); the list with one line per scene is docs/scenes.md, written by
`python -m nero_ns.synthetic.scene_set` from this file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

from nero_ns.errors import NeroInputError
from nero_ns.synthetic.config import SyntheticSceneConfig

GOLD, SILVER, COPPER = (0.95, 0.7, 0.4), (0.95, 0.95, 0.95), (0.95, 0.6, 0.45)
BLUE, RED, WHITE = (0.2, 0.45, 0.8), (0.75, 0.15, 0.1), (0.85, 0.85, 0.8)


@dataclass(frozen=True)
class NamedScene:
    """What a named scene holds, as `SyntheticSceneConfig` options (the others keep nero-synth's defaults)."""

    description: str
    """One line for docs/scenes.md: what the scene tests."""
    options: Dict[str, Any]


SCENES: Dict[str, NamedScene] = {
    "metal-knot": NamedScene(
        "the benchmarks' gold knot since 2026-11: the scene most defaults were tuned on",
        dict(shape="knot", metallic=1.0, roughness=0.1, base_color=GOLD),
    ),
    "glossy-blob": NamedScene(
        "the curve benchmark's blob: glossy blue dielectric, concave dimples reflecting the object itself",
        dict(shape="blob", metallic=0.0, roughness=0.1, base_color=BLUE),
    ),
    "dielectric-blob": NamedScene(
        "the material benchmark's blob: the same shape, rougher (0.3)",
        dict(shape="blob", metallic=0.0, roughness=0.3, base_color=BLUE),
    ),
    "thick-knot": NamedScene(
        "a thicker gold knot at roughness 0.15 (nero-synth's default material): narrow gaps between its strands",
        dict(shape="thick-knot", metallic=1.0, roughness=0.15, base_color=GOLD),
    ),
    "thin-knot": NamedScene(
        "a thin two-material knot: copper metal and blue dielectric bands, so nero-material must separate them",
        dict(
            shape="thin-knot", metallic=1.0, roughness=0.2, base_color=COPPER, material_pattern="stripes",
            second_base_color=BLUE, second_metallic=0.0, second_roughness=0.4,
        ),
    ),
    "mirror-torus": NamedScene(
        "a near-mirror thick torus (roughness 0.02) in a room of sharp-edged panels, on a regular checker",
        dict(shape="torus", metallic=1.0, roughness=0.02, base_color=SILVER, environment="indoor", floor="checker"),
    ),
    "thin-ring": NamedScene(
        "a thin glossy copper ring (roughness 0.25) under the sun on a plain floor: few pixels per cross-section",
        dict(shape="thin-torus", metallic=1.0, roughness=0.25, base_color=COPPER, floor="plain"),
    ),
    "genus2-ceramic": NamedScene(
        "a genus-2 red glossy dielectric under an overcast sky: two holes, a saddle, low-contrast light",
        dict(shape="genus2", metallic=0.0, roughness=0.08, base_color=RED, environment="overcast", floor="checker"),
    ),
    "rough-mug": NamedScene(
        "a rough white mug (roughness 0.6) standing on its flat base in a room: inner cavity, thin handle",
        dict(shape="mug", metallic=0.0, roughness=0.6, base_color=WHITE, environment="indoor", floor="plain"),
    ),
    "mirror-blob": NamedScene(
        "the suite's mirror-like blob (metallic, roughness 0.05)",
        dict(shape="blob", metallic=1.0, roughness=0.05, base_color=(0.9, 0.9, 0.9)),
    ),
    "rough-dielectric": NamedScene(
        "the suite's rough blue dielectric sphere (roughness 0.5)",
        dict(shape="sphere", metallic=0.0, roughness=0.5, base_color=BLUE),
    ),
}
SUBSETS: Dict[str, Tuple[str, ...]] = {
    "quick": ("metal-knot", "glossy-blob", "thick-knot"),
    "full": (
        "metal-knot", "glossy-blob", "thick-knot", "thin-knot", "mirror-torus", "thin-ring", "genus2-ceramic",
        "rough-mug", "dielectric-blob",
    ),
}


def scene_config(name: str, seed: int = 0, **overrides: Any) -> SyntheticSceneConfig:
    """The nero-synth options of scene `name` with `seed` (and `overrides`, e.g. sizes and the output folder)."""
    if name not in SCENES:
        raise NeroInputError(f"unknown scene {name!r}; choose among {', '.join(SCENES)} (docs/scenes.md)")
    return dataclasses.replace(
        SyntheticSceneConfig(), scene=name, seed=seed, **{**SCENES[name].options, **overrides}
    )


def resolve_scenes(selection: str) -> List[str]:
    """Scene names of `quick`, `full`, or a comma-separated list of names."""
    names = list(SUBSETS[selection]) if selection in SUBSETS else [name for name in selection.split(",") if name]
    unknown = [name for name in names if name not in SCENES]
    if unknown or not names:
        raise NeroInputError(
            f"--scenes {selection!r}: unknown scene(s) {', '.join(unknown) or '(none given)'}; pass quick, full or "
            f"names among {', '.join(SCENES)}"
        )
    return names


def scenes_markdown() -> str:
    """docs/scenes.md: every named scene with its line and its options, and the subsets."""
    lines = [
        "# The scene set (`nero-synth --scene NAME --seed K`)",
        "",
        "Written by `python -m nero_ns.synthetic.scene_set` from `nero_ns/synthetic/scene_set.py`; do not edit by "
        "hand. A name fixes the object, its materials, the light and the floor; the seed (0 unless given) picks the "
        "environment maps, cameras, floor texture, distractors and noise. Every scene has distractors. Options "
        "given explicitly to `nero-synth` override the scene's.",
        "",
        "| scene | what it tests | shape | material | environment | floor |",
        "|---|---|---|---|---|---|",
    ]
    for name, scene in SCENES.items():
        config = scene_config(name)
        material = f"metallic {config.metallic:g}, roughness {config.roughness:g}, base {config.base_color}"
        if config.material_pattern != "uniform":
            material += (
                f"; {config.material_pattern} of metallic {config.second_metallic:g}, roughness "
                f"{config.second_roughness:g}, base {config.second_base_color}"
            )
        lines.append(
            f"| `{name}` | {scene.description} | {config.shape} | {material} | {config.environment} | {config.floor} |"
        )
    lines += ["", "Subsets (`--scenes` of the benchmarks, [benchmarks.md](benchmarks.md)):", ""]
    lines += [f"- `{subset}`: {', '.join(names)}" for subset, names in SUBSETS.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    path = Path(__file__).resolve().parents[2] / "docs" / "scenes.md"
    path.write_text(scenes_markdown())
    print(f"wrote {path}")
