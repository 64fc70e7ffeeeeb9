"""The simulator's template engine: a payload's modifications back into a Storyboard.

The vendor holds its own copy of our templates. It lays the template out exactly as
`build_storyboard` does (with a stand-in product and customer, never personalized), then
puts in the texts and uploaded images of the payload. When the vendor's template copy
and the payload's images are the ones we used, the result has the same `key()` as the
storyboard we sent: the vendor renders our video, pixel for pixel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path

from creative.errors import CreativeError
from creative.storyboard import ImagePart, Storyboard, TextPart, build_storyboard
from creative.template import ImageLayer, Template
from retail.types import Customer, Pick, Product

_UPLOAD = re.compile(r"/v2/uploads/([0-9a-f]{64})$")
_STAND_IN = Customer(id="vendor-stand-in", email="stand-in@example.com", first_name="Stand-in")


def storyboard_from_modifications(
    template: Template,
    modifications: Mapping[str, str],
    upload_path: Callable[[str], Path | None],
) -> Storyboard:
    """Lay out `template` and apply `modifications` (`<layer>.text`, `<layer>.source`).

    `upload_path` maps an uploaded file's sha256 to its file (None if unknown). Every text
    layer needs its text and every product image layer its source; an unknown layer or
    property raises CreativeError (the simulator answers 400 with the message).
    """
    parts_by_id = {template.layer_id(i): layer for i, layer in enumerate(template.spec.layers)}
    sources: dict[str, tuple[Path, str]] = {}
    texts: dict[str, str] = {}
    for name, value in modifications.items():
        layer_id, _, prop = name.rpartition(".")
        if layer_id not in parts_by_id:
            raise CreativeError(f"modification {name!r}: template has no layer {layer_id!r}")
        if prop == "text":
            texts[layer_id] = value
        elif prop == "source":
            match = _UPLOAD.search(value)
            path = upload_path(match.group(1)) if match else None
            if match is None or path is None:
                raise CreativeError(f"modification {name!r}: not the URL of an uploaded file")
            sources[layer_id] = (path, match.group(1))
        else:
            raise CreativeError(f"modification {name!r}: unknown property {prop!r}")

    # Stand-in products whose images are the uploads, one per product slot the layout uses.
    slots: dict[int, Path] = {}
    for index, layer in enumerate(template.spec.layers):
        if isinstance(layer, ImageLayer):
            layer_id = template.layer_id(index)
            if layer_id not in sources:
                raise CreativeError(f"modification '{layer_id}.source' is missing")
            slots.setdefault(layer.product, sources[layer_id][0])
    # A slot no image layer shows still needs a product; its image is never opened.
    any_image = next(iter(slots.values()), Path("unused.png"))
    images_root = any_image.parent
    products = {
        f"slot{i}": Product(
            id=f"slot{i}",
            title="stand-in",
            brand="stand-in",
            category="stand-in",
            price=Decimal(0),
            currency="USD",
            image=slots.get(i, any_image).name,
            url="https://vendor.invalid/stand-in",
        )
        for i in range(max(slots, default=0) + 1)
    }
    pick = Pick(
        customer_id=_STAND_IN.id,
        product_ids=tuple(products),
        scores=tuple(0.0 for _ in products),
        reasons=(),
        model_version="vendor",
    )
    laid_out = build_storyboard(
        template, pick, products, _STAND_IN, images_root=images_root, personalize=False
    )
    layers = []
    for part in laid_out.layers:
        if isinstance(part, TextPart):
            if part.id not in texts:
                raise CreativeError(f"modification '{part.id}.text' is missing")
            part = part.model_copy(update={"text": texts[part.id]})
        elif isinstance(part, ImagePart) and part.id in sources:
            path, digest = sources[part.id]
            part = part.model_copy(update={"path": path, "sha256": digest})
        layers.append(part)
    return laid_out.model_copy(update={"layers": tuple(layers)})
