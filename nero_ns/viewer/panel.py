"""What the methods' panels in ns-viewer share: their base class, a markdown element (which nerfstudio's
`viewer_elements` lacks; built on its `ViewerElement`, so the viewer installs it like its own) and inline images."""

from __future__ import annotations

import base64
import io
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional

import numpy as np
from jaxtyping import UInt8
from nerfstudio.engine.callbacks import TrainingCallback
from nerfstudio.viewer.viewer_elements import ViewerControl, ViewerElement
from PIL import Image
from torch import nn
from viser import ViserServer

if TYPE_CHECKING:
    from nerfstudio.pipelines.base_pipeline import VanillaPipeline
    from nerfstudio.viewer.viewer import Viewer

EXPORT_RESOLUTIONS = (64, 512, 32)
"""Smallest, largest and step of the export resolution sliders (marching-cubes samples per axis)."""


class ViewerPanel(nn.Module, ViewerControl):
    """Base of a method's panel. nerfstudio's viewer lists the `ViewerElement` attributes it finds on the pipeline
    and its modules, in the alphabetical order of their names (which is why the panels name them as they do).

    It is an `nn.Module` without weights so that the viewer looks inside it, and a `ViewerControl` so that the
    viewer hands itself over when it starts (`self.viewer`: run folder, step). The pipeline is held by a weak
    reference, since the pipeline holds the panel."""

    def __init__(self, pipeline: "VanillaPipeline") -> None:
        super().__init__()
        self._pipeline = weakref.ref(pipeline)
        # Set by the viewer in `_setup`; present before, since the viewer reads every attribute while searching.
        self.viewer: Optional["Viewer"] = None
        self.viser_server: Optional[ViserServer] = None

    def owner(self) -> "VanillaPipeline":
        """The pipeline this panel belongs to (a method, not a property: the viewer follows modules in properties
        while it searches, and would go round the pipeline and its panel forever)."""
        pipeline = self._pipeline()
        assert pipeline is not None, "a viewer panel outlived its pipeline"
        return pipeline

    def training_callbacks(self) -> List[TrainingCallback]:
        """Callbacks that keep the panel up to date while training (none by default)."""
        return []

    @contextmanager
    def model_renders(self) -> Iterator[None]:
        """Within it, camera renders are the model's own, whatever the panel shows (the pipeline's evaluation runs in
        it). Nothing to change by default."""
        yield

    def export_folder(self, name: str) -> Path:
        """`<run folder>/viewer_exports/<name>`: where the panel's export buttons write."""
        assert self.viewer is not None, "export buttons work once the viewer has started"
        return self.viewer.log_filename.parent / "viewer_exports" / name


class ViewerMarkdown(ViewerElement[str]):
    """Markdown text in the panel: a readout or a message, which the program rewrites through `content`."""

    def __init__(self, content: str = "", visible: bool = True) -> None:
        super().__init__(name="markdown", visible=visible)
        self._content = content

    def _create_gui_handle(self, viser_server: ViserServer) -> None:
        # Images in our markdown are data URLs; without an image_root viser warns that relative paths would be read
        # from its own folder.
        self.gui_handle = viser_server.gui.add_markdown(  # type: ignore[assignment]
            self._content, image_root=Path.cwd(), visible=self.visible
        )

    def install(self, viser_server: ViserServer) -> None:
        self._create_gui_handle(viser_server)

    @property
    def content(self) -> str:
        """The markdown shown."""
        return self._content

    @content.setter
    def content(self, content: str) -> None:
        self._content = content
        if self.gui_handle is not None:
            self.gui_handle.content = content  # type: ignore[union-attr]


def markdown_image(image: UInt8[np.ndarray, "height width 3"], caption: str) -> str:
    """Markdown that shows an image inline (a PNG data URL, so nothing is served or fetched)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![{caption}](data:image/png;base64,{encoded})\n\n{caption}"
