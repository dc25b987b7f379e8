"""Thumbnails and the image page draw what a viewer draws, and sizes read width x height.

pydicom's examples_palette.dcm (an 800 x 350 ultrasound in PALETTE COLOR) goes through the
real pipeline into the catalog; its thumbnail must be coloured through the file's LUTs, not
the grey palette indices.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.test import Client
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_color_lut

from anonymizer import services
from anonymizer.intake import incoming_from_upload
from workbench.models import Instance, Project
from workbench.render import frame_png

PALETTE = "examples_palette.dcm"


@pytest.fixture
def palette_instance(cast: dict[str, Any], project_a: Project, run_tasks: Any) -> Instance:
    raw = Path(get_testdata_file(PALETTE)).read_bytes()  # type: ignore[arg-type]
    with run_tasks():
        batch = services.batch_create(project=project_a, source="upload", user=cast["alice"])
        services.batch_add(batch=batch, incoming=incoming_from_upload("palette.dcm", io.BytesIO(raw)))
    instance = Instance.objects.get()
    assert (instance.rows, instance.columns) == (350, 800)
    return instance


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_palette_thumbnail_is_drawn_in_its_colours(palette_instance: Instance, cast: dict[str, Any]) -> None:
    response = _client(cast["bob"]).get(f"/api/instances/{palette_instance.pk}/render.png", {"size": 200})
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "RGB" and image.size == (200, 88)  # width x height, scaled to fit 200
    pixels = np.asarray(image).astype(int)
    # Colour, not grey indices: the channels differ widely somewhere.
    assert (np.abs(pixels[..., 0] - pixels[..., 2]) > 30).mean() > 0.01


def test_the_full_render_equals_the_colour_lut_of_the_stored_file(palette_instance: Instance) -> None:
    from django.core.files.storage import default_storage

    with default_storage.open(palette_instance.storage_path, "rb") as fh:
        stored = fh.read()
    ds = pydicom.dcmread(io.BytesIO(stored))
    assert ds.PhotometricInterpretation == "PALETTE COLOR"
    expected = np.asarray(apply_color_lut(ds.pixel_array, ds)).astype(np.float64) * 255 / 65535  # 16-bit entries
    drawn = np.asarray(Image.open(io.BytesIO(frame_png(io.BytesIO(stored))))).astype(np.float64)
    assert drawn.shape == (350, 800, 3)
    assert np.abs(drawn - expected).max() <= 0.5 + 1e-9


def test_an_8_bit_lut_palette_is_drawn_as_is() -> None:
    ds = pydicom.dcmread(get_testdata_file(PALETTE))
    for colour in ("Red", "Green", "Blue"):
        lut = np.frombuffer(getattr(ds, f"{colour}PaletteColorLookupTableData"), dtype="<u2")
        setattr(ds, f"{colour}PaletteColorLookupTableData", (lut >> 8).astype(np.uint8).tobytes())
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 8])
    buffer = io.BytesIO()
    ds.save_as(buffer)
    drawn = np.asarray(Image.open(io.BytesIO(frame_png(io.BytesIO(buffer.getvalue())))))
    assert np.array_equal(drawn, np.asarray(apply_color_lut(ds.pixel_array, ds)))


def test_the_image_page_gives_sizes_as_width_by_height(palette_instance: Instance, cast: dict[str, Any]) -> None:
    html = _client(cast["bob"]).get(f"/series/{palette_instance.series_id}/").content.decode()
    assert "800 × 350 px" in html and "350×800" not in html
