"""The ns-viewer panels on tiny runs. Through a real nerfstudio Viewer (its viser server, in this process):
nero-material's relighting preview follows the light, rotation and exposure, its buttons write a textured .glb and
show the learned light; nero-shape's readout reports its convergence figures and its button writes a mesh. Then
`ns-viewer --load-config` in its own process, its page loaded in headless Chromium: the relighting panel is there, a
click on its button brings the learned light into the page, a screenshot is written, and the console holds one line
of ours about tinycudann and no third-party warning of those nero-ns silences."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
import torch
import trimesh
from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipeline
from nerfstudio.utils.eval_utils import eval_setup
from nerfstudio.utils.external import TCNN_EXISTS
from nerfstudio.viewer.viewer import Viewer
from nerfstudio.viewer.viewer_elements import ViewerElement
from PIL import Image
from trimesh.visual.material import PBRMaterial
from websockets.sync.client import ClientConnection, connect

from nero_ns.viewer.material_controls import LEARNED_LIGHT, TRAINING_RENDER, RelightingPanel
from nero_ns.viewer.shape_controls import ShapePanel
from nero_ns.viewer.studio_lights import STUDIO_LIGHTS
from tests.models.test_nero_material import material_trainer
from tests.models.test_shape_run import write_shape_run

TRAIN_STEPS = 10


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_viewer(pipeline: VanillaPipeline, run_dir: Path, step: int) -> Iterator[Viewer]:
    """nerfstudio's Viewer on `pipeline`, as ns-viewer starts it (its panel elements installed), stopped after."""
    viewer = Viewer(
        ViewerConfig(websocket_port=free_port(), num_rays_per_chunk=4096),
        log_filename=run_dir / "viewer_log_filename.txt",
        datapath=pipeline.datamanager.get_datapath(),
        pipeline=pipeline,
        train_lock=threading.Lock(),
    )
    viewer.step = step
    try:
        yield viewer
    finally:
        viewer.viser_server.stop()


def click(element: ViewerElement) -> None:
    """What the viewer runs when the element is used in the browser (its callback, under the viewer's lock)."""
    element.cb_hook(element)


@pytest.fixture(scope="module")
def material_run(tiny_scene, tmp_path_factory):
    """A nero-shape run (the untrained sphere) and a nero-material run trained TRAIN_STEPS steps on it, loaded back as
    ns-viewer loads it."""
    trainer, config_path, shape_config = material_trainer(tiny_scene, tmp_path_factory.mktemp("viewer"), TRAIN_STEPS)
    trainer.train()
    _, pipeline, _, step = eval_setup(config_path, test_mode="test")
    return {"config_path": config_path, "shape_config": shape_config, "pipeline": pipeline, "step": step}


@pytest.fixture(scope="module")
def material_viewer(material_run):
    with running_viewer(material_run["pipeline"], material_run["config_path"].parent, material_run["step"]) as viewer:
        yield viewer


def test_the_viewer_finds_the_relighting_panel(material_run, material_viewer):
    panel = material_run["pipeline"].panel
    assert isinstance(panel, RelightingPanel) and panel.viewer is material_viewer
    # It opens on the quick preview under the learned light.
    assert panel.light.value == LEARNED_LIGHT and material_run["pipeline"].model.preview_light is not None
    paths = {path for path, _ in material_viewer.viewer_elements}
    assert {"Custom Elements/panel/light", "Custom Elements/panel/light_exposure",
            "Custom Elements/panel/light_rotation", "Custom Elements/panel/write_glb"} <= paths  # fmt: skip
    assert panel.light.gui_handle is not None and set(STUDIO_LIGHTS) <= set(panel.light.gui_handle.options)


def render_rgb(pipeline, index: int = 0) -> torch.Tensor:
    """The viewer's image of training camera `index`: what `get_outputs_for_camera` gives it."""
    model = pipeline.model
    model.eval()
    camera = pipeline.datamanager.train_dataset.cameras[index : index + 1].to(model.device)
    torch.manual_seed(0)
    return model.get_outputs_for_camera(camera)


def choose(panel: RelightingPanel, light: str, rotation: float = 0.0, exposure: float = 0.0) -> None:
    panel.light.value, panel.light_rotation.value, panel.light_exposure.value = light, rotation, exposure
    click(panel.light)


def test_changing_the_light_rotation_and_exposure_changes_the_render(material_run, material_viewer):
    pipeline = material_run["pipeline"]
    panel = pipeline.panel
    try:
        choose(panel, TRAINING_RENDER)
        assert pipeline.model.preview_light is None
        monte_carlo = render_rgb(pipeline)
        assert "visibility" in monte_carlo  # the model's own render
        choose(panel, LEARNED_LIGHT)
        learned = render_rgb(pipeline)
        choose(panel, "Studio: sunset")
        sunset = render_rgb(pipeline)
        choose(panel, "Studio: sunset", rotation=90.0)
        turned = render_rgb(pipeline)
        choose(panel, "Studio: sunset", rotation=90.0, exposure=1.0)
        brighter = render_rgb(pipeline)
    finally:
        choose(panel, TRAINING_RENDER)
    hit = learned["accumulation"][..., 0] > 0
    assert 0.05 < hit.float().mean() < 0.9
    # The preview shades the same object as the training render: the object's pixels agree where both see it.
    assert torch.equal(hit, sunset["accumulation"][..., 0] > 0)
    assert (monte_carlo["accumulation"][..., 0][hit] > 0).float().mean() > 0.95
    # Another light, another turn of it: the object's colours move by a visible amount.
    assert (sunset["rgb"][hit] - learned["rgb"][hit]).abs().mean() > 0.03
    assert (turned["rgb"][hit] - sunset["rgb"][hit]).abs().mean() > 0.01
    # One stop more light doubles the linear radiance everywhere, background included.
    torch.testing.assert_close(brighter["rgb_linear"], 2.0 * turned["rgb_linear"], rtol=1e-4, atol=1e-6)
    assert pipeline.model.preview_light is None


def test_evaluation_scores_the_training_render_while_a_preview_is_shown(material_run, material_viewer):
    pipeline = material_run["pipeline"]
    panel = pipeline.panel

    def eval_metrics() -> Dict[str, float]:
        torch.manual_seed(0)  # the same Monte Carlo samples
        metrics = pipeline.get_average_eval_image_metrics(step=0)
        return {name: metrics[name] for name in ("psnr", "ssim")}  # not the timings

    try:
        choose(panel, TRAINING_RENDER)
        monte_carlo = eval_metrics()
        choose(panel, "Studio: sunset")
        while_previewing = eval_metrics()
        assert pipeline.model.preview_light is not None and not pipeline.model.preview_paused  # still shown
    finally:
        choose(panel, TRAINING_RENDER)
    assert while_previewing == monte_carlo and monte_carlo["psnr"] > 5.0


def test_the_learned_light_button_shows_the_learned_map(material_run, material_viewer):
    panel = material_run["pipeline"].panel
    click(panel.show_learned_light)
    encoded = panel.shown_learned_light.content.split("data:image/png;base64,")[1].split(")")[0]
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))
    assert image.shape == (64, 128, 3)
    assert image.std() > 1.0  # a lit sky above and a floor below, not a flat colour


def test_the_export_button_writes_a_textured_glb_that_loads(material_run, material_viewer):
    panel = material_run["pipeline"].panel
    panel.write_at_resolution.value = 64
    click(panel.write_glb)
    written = sorted((material_run["config_path"].parent / "viewer_exports").glob("materials-*-res64/model.glb"))
    assert len(written) == 1 and str(written[0]) in panel.written.content
    scene = trimesh.load(written[0])
    (mesh,) = scene.geometry.values()
    assert len(mesh.faces) > 500
    material = mesh.visual.material
    assert isinstance(material, PBRMaterial) and material.baseColorTexture is not None
    assert mesh.visual.uv.shape == (len(mesh.vertices), 2)
    assert np.asarray(material.baseColorTexture).std() > 0.0


@pytest.fixture(scope="module")
def shape_run(tiny_scene, tmp_path_factory):
    # Without the support plane: the readout's "rays ending inside the sphere" would also count the floor's.
    config_path = write_shape_run(tiny_scene, tmp_path_factory.mktemp("viewer_shape"), support_plane=False)
    _, pipeline, _, step = eval_setup(config_path, test_mode="test")
    with running_viewer(pipeline, config_path.parent, step) as viewer:
        yield {"config_path": config_path, "pipeline": pipeline, "viewer": viewer}


def test_the_shape_readout_reports_sharpness_levels_and_rays_inside(shape_run):
    panel = shape_run["pipeline"].panel
    assert isinstance(panel, ShapePanel) and panel.viewer is shape_run["viewer"]
    model = shape_run["pipeline"].model
    figures = panel.refresh_readout(7)
    assert figures is not None and "inv_s" in panel.convergence.content
    assert figures.inv_s == pytest.approx(float(model.sdf_field.inv_s()))
    encoding = model.sdf_field.encoding
    assert 1 <= figures.unlocked_levels == encoding.num_active_levels <= figures.num_levels == encoding.num_levels
    # The untrained SDF is the init sphere: the rays that end inside are those that pass within its radius of the
    # center, among those that cross the unit sphere.
    rays = panel._probe_rays
    closest = torch.cross(rays.origins, rays.directions, dim=-1).norm(dim=-1) / rays.directions.norm(dim=-1)
    crossing = closest < 1.0
    expected = float((closest[crossing] < model.sdf_field.config.init_radius).float().mean())
    assert figures.crossing_rays == int(crossing.sum()) > 100
    assert 0.05 < expected < 0.95 and figures.inside_share == pytest.approx(expected, abs=0.05)


def test_the_shape_export_button_writes_a_mesh_that_loads(shape_run):
    panel = shape_run["pipeline"].panel
    panel.write_at_resolution.value = 64
    click(panel.write_mesh)
    (written,) = (shape_run["config_path"].parent / "viewer_exports").glob("mesh-*-res64/mesh.ply")
    assert str(written) in panel.written.content
    mesh = trimesh.load(written)
    assert mesh.is_watertight and len(mesh.faces) > 500
    # Back in the normalized frame it is the init sphere, cut at the floor.
    outputs = shape_run["pipeline"].datamanager.train_dataparser_outputs
    transform = outputs.dataparser_transform.double().numpy()
    normalized = outputs.dataparser_scale * (mesh.vertices @ transform[:, :3].T + transform[:, 3])
    with torch.no_grad():
        surface_sdf = shape_run["pipeline"].model.query_sdf(torch.as_tensor(normalized, dtype=torch.float32))
    assert float(surface_sdf.abs().max()) < 0.02


@pytest.mark.skipif(TCNN_EXISTS, reason="tinycudann is installed here: nothing to report")
def test_the_console_says_once_in_one_line_that_tinycudann_is_absent():
    script = (
        "from nero_ns.components.hash_grid import build_hash_grid\n"
        "for _ in range(3): build_hash_grid('tcnn', num_levels=2, min_res=4, max_res=8, log2_hashmap_size=8, "
        "features_per_level=2)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len([line for line in lines if "tinycudann" in line]) == 1
    assert not any("http" in line or "git+" in line or "Warning" in line for line in lines), lines


CHROMIUM = shutil.which("chromium")
PANEL_LABELS = ("Light", "Exposure (EV)", "Rotation (deg)", "Light folder", "Show learned light",
                "Export textured .glb")  # fmt: skip
SCREEN = (800, 900)
"""Width and height of the page in the screenshot."""


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Until something listens on `port`, failing with `log` if `process` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}:\n{log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"{process.args[0]} did not listen on {port} within {timeout_s} s:\n{log.read_text()}")


@contextmanager
def started(command: List[str], log: Path) -> Iterator[subprocess.Popen]:
    """`command` in its own process group, output to `log`; the group is stopped on leaving."""
    with log.open("w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # with the processes it started (data workers, browser helpers)
        process.wait(timeout=30)


class DevToolsPage:
    """A tab of headless Chromium, driven through the DevTools protocol (over `websockets`, which viser needs)."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.last_id = 0

    def call(self, method: str, **params: Any) -> Dict[str, Any]:
        """Send one command and return its result (events received meanwhile are dropped)."""
        self.last_id += 1
        self.connection.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.connection.recv(timeout=60))
            if message.get("id") == self.last_id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float) -> Any:
        """The first truthy value of `expression`, polled twice a second."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"the page never made {expression!r} true within {timeout_s} s")


@contextmanager
def chromium_page(folder: Path) -> Iterator[DevToolsPage]:
    """A SCREEN-sized tab of headless Chromium (profile and log in `folder`), closed on leaving."""
    port = free_port()
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
               f"--remote-debugging-port={port}", f"--user-data-dir={folder / 'profile'}", "about:blank"]  # fmt: skip
    with started(command, folder / "chromium.log") as browser:
        wait_for_port(port, browser, folder / "chromium.log", timeout_s=30)
        local = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        targets = json.load(local.open(f"http://127.0.0.1:{port}/json/list", timeout=30))
        address = next(target["webSocketDebuggerUrl"] for target in targets if target["type"] == "page")
        with connect(address, max_size=None) as connection:
            page = DevToolsPage(connection)
            page.call("Emulation.setDeviceMetricsOverride", width=SCREEN[0], height=SCREEN[1], deviceScaleFactor=1,
                      mobile=False)  # fmt: skip
            yield page


PAGE_TEXT_HAS_LABELS = (
    "(() => { const text = document.body ? document.body.innerText : '';"
    f" return {json.dumps(list(PANEL_LABELS))}.every(label => text.includes(label)); }})()"
)
CLICK_SHOW_LEARNED_LIGHT = (
    "(() => { const button = [...document.querySelectorAll('button')]"
    ".find(b => b.innerText.trim() === 'Show learned light'); button.click(); return true; })()"
)
PANEL_SHOWS_AN_IMAGE = "!!document.querySelector('img[src^=\"data:image/png\"]')"
SCROLL_TO_THE_PANEL = (
    "(() => { const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); let node;"
    " while ((node = walker.nextNode())) { if (node.textContent.trim() === 'Custom Elements') {"
    " node.parentElement.scrollIntoView({block: 'start'}); return true; } } return false; })()"
)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (install.sh installs it)")
def test_ns_viewer_shows_the_relighting_panel_in_chromium(material_run, tmp_path):
    port = free_port()
    command = ["ns-viewer", "--load-config", str(material_run["config_path"]), "--viewer.websocket-port", str(port),
               "--viewer.websocket-host", "127.0.0.1"]  # fmt: skip
    console = tmp_path / "ns-viewer.log"
    screenshot = tmp_path / "ns-viewer.png"
    with started(command, console) as viewer:
        wait_for_port(port, viewer, console, timeout_s=120)
        with chromium_page(tmp_path) as page:
            page.call("Page.navigate", url=f"http://127.0.0.1:{port}")
            page.wait_for(PAGE_TEXT_HAS_LABELS, timeout_s=45)
            # A click in the page runs the panel's callback in ns-viewer, whose image comes back to the page.
            page.evaluate(CLICK_SHOW_LEARNED_LIGHT)
            page.wait_for(PANEL_SHOWS_AN_IMAGE, timeout_s=30)
            assert page.evaluate(SCROLL_TO_THE_PANEL)
            screenshot.write_bytes(base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"]))
    image = np.asarray(Image.open(screenshot).convert("RGB"))
    assert image.shape == (SCREEN[1], SCREEN[0], 3) and image.std() > 10.0
    text = console.read_text()
    assert text.count("nero-ns: tinycudann is not installed") == (0 if TCNN_EXISTS else 1)
    assert "git+" not in text, text
    # nerfstudio's commands import its cameras module, which makes torch warn about torch.jit.script, before they
    # load plugins; every other third-party warning is silenced once nero-ns loads.
    warnings = [line for line in text.splitlines() if "Warning" in line]
    assert all("torch.jit.script" in line for line in warnings), warnings
