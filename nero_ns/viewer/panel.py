"""What the methods' panels in ns-viewer share: their base class, a markdown element (which nerfstudio's
`viewer_elements` lacks; built on its `ViewerElement`, so the viewer installs it like its own) and inline images."""

from __future__ import annotations

import base64
import io
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
from jaxtyping import UInt8
from nerfstudio.models.base_model import Model
from nerfstudio.viewer.viewer_elements import ViewerControl, ViewerElement
from PIL import Image
from torch import nn
from viser import ViserServer

if TYPE_CHECKING:
    from nerfstudio.viewer.viewer import Viewer

EXPORT_RESOLUTIONS = (64, 512, 32)
"""Smallest, largest and step of the export resolution sliders (marching-cubes samples per axis)."""


class ModelPanel(nn.Module, ViewerControl):
    """Base of a model's panel: the viewer lists the `ViewerElement` attributes of the model's modules, in the
    alphabetical order of their names, in a folder named after the panel's attribute on the model.

    It is an `nn.Module` without weights so that the viewer looks inside it, and a `ViewerControl` so that the
    viewer hands itself over when it starts (`self.viewer`: run folder, dataset, step). The model is held by a weak
    reference, since the model holds the panel."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self._model = weakref.ref(model)
        # Set by the viewer in `_setup`; present before, since the viewer reads every attribute while searching.
        self.viewer: Optional["Viewer"] = None
        self.viser_server: Optional[ViserServer] = None

    def owner(self) -> Model:
        """The model this panel belongs to."""
        model = self._model()
        assert model is not None, "a viewer panel outlived its model"
        return model

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
        self.gui_handle = viser_server.gui.add_markdown(self._content, visible=self.visible)  # type: ignore[assignment]

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
