"""The TOTP enrolment page's QR code, drawn on the server as inline SVG.

Why: people enrol a second factor by scanning, not by typing 32 base32 characters; the console serves
no script from a CDN and runs none inline (government intranets, the console's CSP), so the code is
drawn here by segno (pure Python) and sent as markup. The URI is encoded into modules, never into SVG
text, so a principal's name in it cannot inject markup.
"""

from __future__ import annotations

import segno
from markupsafe import Markup

#: Medium error correction and 4 px modules: readable by phone cameras off a laptop screen.
_SCALE = 4


def qr_svg(uri: str) -> Markup:
    """An ``<svg>`` element encoding ``uri`` (an ``otpauth://`` URI), titled for screen readers."""
    code = segno.make(uri, error="m", micro=False)
    svg = code.svg_inline(scale=_SCALE, border=4, dark="#000", light="#fff", svgclass="totp-qr", title="TOTP QR")
    return Markup(svg)
