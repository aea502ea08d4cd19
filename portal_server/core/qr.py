"""QR codes as inline SVG (no image files: a TV page or a staff page embeds them directly)."""
from __future__ import annotations

import functools
import re

from markupsafe import Markup


@functools.lru_cache(maxsize=512)
def qr_svg(data: str, size: int = 220) -> Markup:
    """``data`` as a QR code, an SVG of ``size`` × ``size`` CSS pixels. Kept per process: the same
    link (an item's phone page, a meeting's OBS URL) is drawn once, not on every view (~10 ms each)."""
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg = img.to_string(encoding="unicode")
    return Markup(re.sub(r'width="[^"]+" height="[^"]+"', f'width="{size}" height="{size}"', svg, count=1))
