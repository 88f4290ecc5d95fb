"""The Vega-Lite subset the platform renders: an allowlist of keys and values, walked over a spec.

Why an allowlist and not a deny-list (``sandbox.guard.charts``): a spec that evaluates an
expression, fetches a URL or draws a free-form path could carry records past the guard, and
Vega-Lite grows new ways to do each. Every key here is known, every value checked by kind, and
every free-text string collected for the guard to judge; what is not listed is a problem, with the
reason when the key is a known hazard. Problems never stop the walk, so one reading reports all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MAX_LIST = 256
MAX_PIXELS = 4096  # width, height, step, padding: keeps a chart from becoming a huge canvas
TABLE_SUFFIXES = (".csv", ".parquet", ".json")


class Walker:
    """Accumulates what a walk over the spec found; problems never stop the walk."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.fields: set[str] = set()
        self.strings: dict[str, None] = {}  # insertion-ordered set
        self.tables: list[str] = []

    def bad(self, path: str, why: str) -> None:
        self.problems.append(f"{path or '/'}: {why}")

    def text(self, value: str) -> None:
        self.strings.setdefault(value, None)


Check = Callable[[Walker, Any, str], None]
#: Keyword arguments of :func:`_obj` gathered in a dict: checks by key, and the space-separated key
#: lists (``styles``, ``colors``…) beside them, so the values are either.
Keywords = dict[str, Any]

# Keys a hostile or careless spec is likely to use, with the reason they are refused.
_REASONS = {
    **dict.fromkeys(str.split("expr signal labelExpr calculate filter test condition"), "evaluates an expression"),
    **dict.fromkeys(str.split("param params selection on update bind"), "interactive parameters evaluate code"),
    **dict.fromkeys(str.split("url href lookup datasets loader"), "could fetch or link outside the platform"),
    "values": "inline data is not allowed: reference a judged output table",
    "transform": "transforms are not allowed: use aggregate, bin, timeUnit and sort inside encoding channels",
    "config": "config is not allowed",
}
_COLOR_RE = re.compile(r"#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20}|(?:rgb|rgba|hsl|hsla)\([0-9.,% ]{1,40}\)")
SCHEMA_RE = re.compile(r"https://vega\.github\.io/schema/vega-lite/v(\d{1,2})(?:\.\d{1,3}){0,2}\.json")
_TIME_UNIT_RE = re.compile(
    r"(?:utc)?(?:binned)?(?=.)(?:year)?(?:quarter)?(?:month)?(?:week)?(?:day|dayofyear)?(?:date)?"
    r"(?:hours)?(?:minutes)?(?:seconds)?(?:milliseconds)?"
)
_SORT_CHANNEL_RE = re.compile(r"-?(?:x|y|color|fill|stroke|strokeWidth|size|shape|opacity|fillOpacity|strokeOpacity)")
_MARKS = "bar line point area rect rule tick circle square arc trail boxplot"
_SHAPES = (
    "circle square cross diamond triangle triangle-up triangle-down triangle-left triangle-right stroke arrow wedge"
)
_AGGREGATES = "count valid missing distinct sum product mean average variance variancep stdev stdevp stderr median "
_AGGREGATES += "q1 q3 ci0 ci1 min max"
_CHANNELS = "x y x2 y2 xOffset yOffset color fill stroke opacity fillOpacity strokeOpacity strokeWidth strokeDash "
_CHANNELS += "size shape angle theta theta2 radius radius2 column row facet tooltip order detail"
_KINDS = {type(None): "null", bool: "bool", int: "num", float: "num", str: "str", list: "list", dict: "dict"}


def _hint(value: Any) -> str:
    """Why an object sat where a plain value belongs, when it holds a key refused for a reason."""
    reasons = [f"{k}: {_REASONS[k]}" for k in value if k in _REASONS] if isinstance(value, dict) else []
    return f" ({reasons[0]})" if reasons else ""


def _only(kinds: str, why: str) -> Check:
    """A plain value of the given JSON kinds; strings are free text, so they are kept for the guard."""
    allowed = kinds.split()

    def check(w: Walker, v: Any, p: str) -> None:
        if _KINDS.get(type(v)) not in allowed:
            w.bad(p, why + _hint(v))
        elif isinstance(v, str):
            w.text(v)

    return check


_NUM = _only("num", "must be a number")
_BOOL = _only("bool", "must be true or false")
_TEXT = _only("str", "must be a string")
_STYLE = _only("str num bool null", "must be a plain string, number or boolean, never an object")
_ANY_NULL = _only("null", "must be null")
_SCALAR = _STYLE


def _pixels(w: Walker, v: Any, p: str) -> None:
    if _KINDS.get(type(v)) != "num" or not 0 <= v <= MAX_PIXELS:
        w.bad(p, f"must be a number from 0 to {MAX_PIXELS}")


def _matching(pattern: re.Pattern[str], why: str) -> Check:
    """A string of a known shape (kept for the guard all the same): anything else is a problem."""

    def check(w: Walker, v: Any, p: str) -> None:
        if isinstance(v, str) and pattern.fullmatch(v):
            w.text(v)
        else:
            w.bad(p, why)

    return check


# A CSS colour only: no ``url(...)`` paint server that a viewer's browser would fetch.
_color = _matching(_COLOR_RE, "must be a colour name, #hex, rgb() or hsl()")
_schema_url = _matching(SCHEMA_RE, "must be a Vega-Lite schema URL (it is never fetched)")


def _enum(words: str) -> Check:
    """A keyword from a closed set (``null`` stands for JSON null); keywords are not free text."""
    allowed = frozenset(None if word == "null" else word for word in words.split())

    def check(w: Walker, v: Any, p: str) -> None:
        if not isinstance(v, str | None) or v not in allowed:
            w.bad(p, f"must be one of: {words}")

    return check


_SHAPE = _enum(_SHAPES)  # named symbols only: a custom SVG path would let the spec draw free-form glyphs


def _range_item(w: Walker, v: Any, p: str) -> None:
    if not (isinstance(v, str) and v in _SHAPES.split()):
        (_NUM if _KINDS.get(type(v)) == "num" else _color)(w, v, p)


def _list(item: Check, max_len: int = MAX_LIST) -> Check:
    def check(w: Walker, v: Any, p: str) -> None:
        if not isinstance(v, list) or len(v) > max_len:
            w.bad(p, f"must be a list of at most {max_len} items")
            return
        for i, x in enumerate(v):
            item(w, x, f"{p}/{i}")

    return check


def _by_kind(**checks: Check) -> Check:
    """Dispatch on the JSON kind of the value; a kind not listed is a problem."""

    def check(w: Walker, v: Any, p: str) -> None:
        chosen = checks.get(_KINDS.get(type(v), "other"))
        if chosen is None:
            w.bad(p, f"must be {' or '.join(sorted(checks))}{_hint(v)}")
        else:
            chosen(w, v, p)

    return check


def _obj(
    required: str = "", /, *, styles: str = "", colors: str = "", nums: str = "", flags: str = "", **named: Check
) -> Check:
    """An object whose every key is on the allowlist: an unknown key is a problem (fail closed).

    ``styles``, ``colors``, ``nums`` and ``flags`` name keys (space-separated) taking plain style
    values, colours, numbers and booleans; ``named`` gives the check for every other key.
    """
    schema: dict[str, Check] = {}
    for names, plain in ((styles, _STYLE), (colors, _color), (nums, _NUM), (flags, _BOOL)):
        schema.update(dict.fromkeys(names.split(), plain))
    schema.update(named)

    def check(w: Walker, v: Any, p: str) -> None:
        if not isinstance(v, dict):
            w.bad(p, "must be an object")
            return
        for key in required.split():
            if key not in v:
                w.bad(p, f"needs {key!r}")
        for key, value in v.items():
            if key in schema:
                schema[key](w, value, f"{p}/{key}")
            else:
                w.bad(f"{p}/{key}", _REASONS.get(key, "not an allowed key here"))

    return check


def _null_ok(check: Check) -> Check:
    return _by_kind(null=_ANY_NULL, str=check, num=check, bool=check, list=check, dict=check)


def _field(w: Walker, v: Any, p: str) -> None:
    if not isinstance(v, str) or not 0 < len(v) <= 256:
        w.bad(p, "a field must be a column name (a string of 1-256 characters)")
    elif any(c in v for c in ".[]\\"):
        w.bad(p, "a field name with '.', '[', ']' or '\\' is read as a nested path: rename the column")
    else:
        w.fields.add(v)


def _data(w: Walker, v: Any, p: str) -> None:
    """The one allowed data source: a relative name of another output table of the same job."""
    if not isinstance(v, dict) or len(v) != 1 or not ({"url", "name"} & v.keys()):
        inline = isinstance(v, dict) and "values" in v
        w.bad(p, _REASONS["values"] if inline else 'must be {"url": "TABLE"} or {"name": "TABLE"}, one output table')
        return
    name = next(iter(v.values()))
    if not (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and name.isprintable()
        and not any(c in name for c in ":\\")
        and all(part not in ("", ".", "..") for part in name.split("/"))
        and name.lower().endswith(TABLE_SUFFIXES)
    ):
        w.bad(p, f"must be a relative output name ending in {', '.join(TABLE_SUFFIXES)} (no scheme, '/', '..')")
        return
    w.tables.append(name)


def _time_unit(w: Walker, v: Any, p: str) -> None:
    if isinstance(v, dict):
        _obj(unit=_time_unit, step=_NUM, utc=_BOOL, maxbins=_NUM)(w, v, p)
    elif not (isinstance(v, str) and _TIME_UNIT_RE.fullmatch(v)):
        w.bad(p, "must be a Vega-Lite time unit such as 'yearmonth'")


def _sort(w: Walker, v: Any, p: str) -> None:
    """Sort keywords, a channel name (optionally negated), a list of values, or a sort object."""
    if v is None or v in ("ascending", "descending") or (isinstance(v, str) and _SORT_CHANNEL_RE.fullmatch(v)):
        return
    order = _enum("ascending descending null")
    sort_by = _obj(field=_field, op=_enum(_AGGREGATES), order=order, encoding=_enum(_CHANNELS))
    _by_kind(list=_list(_SCALAR), dict=sort_by)(w, v, p)


_TEXTS = _by_kind(str=_TEXT, list=_list(_TEXT))
_FORMAT_TYPE = _enum("number time utc")
_LABELS = "labelFont titleFont labelAlign labelBaseline labelFontStyle labelFontWeight titleAlign titleAnchor "
_LABELS += "titleBaseline titleFontStyle titleFontWeight labelFontSize titleFontSize labelLimit titleLimit "
_LABELS += "labelLineHeight titleLineHeight labelOpacity titleOpacity labelPadding titlePadding format orient "
_LABELS += "labelAngle titleAngle labelOffset labelOverlap labelSeparation offset zindex tickCount"
_GUIDE: Keywords = {"title": _null_ok(_TEXTS), "formatType": _FORMAT_TYPE, "values": _list(_SCALAR)}
_DASH = _list(_NUM, 16)
_AXIS = _obj(
    styles=_LABELS + " bandPosition domain domainCap domainOpacity domainWidth grid gridCap gridOpacity gridWidth "
    "labelBound labelFlush labelFlushOffset labels maxExtent minExtent position tickBand tickCap tickExtra "
    "tickMinStep tickOffset tickOpacity tickRound ticks tickSize tickWidth titleX titleY translate",
    colors="labelColor titleColor domainColor gridColor tickColor",
    **_GUIDE,
    domainDash=_DASH,
    gridDash=_DASH,
    tickDash=_DASH,
)
_LEGEND = _obj(
    styles=_LABELS + " clipHeight columnPadding columns cornerRadius direction gradientLength gradientThickness "
    "gradientStrokeWidth legendX legendY padding rowPadding symbolOpacity symbolSize symbolStrokeWidth "
    "symbolOffset symbolLimit titleOrient type",
    colors="labelColor titleColor fillColor strokeColor symbolFillColor symbolStrokeColor",
    **_GUIDE,
    symbolDash=_DASH,
    symbolType=_SHAPE,
)
_HEADER = _obj(styles=_LABELS + " labelAnchor labelOrient labels titleOrient", colors="labelColor titleColor", **_GUIDE)
_SCALE = _obj(
    nums="domainMin domainMax domainMid padding paddingInner paddingOuter exponent base constant align",
    flags="zero reverse clamp round",
    styles="nice interpolate",
    type=_enum("linear log pow sqrt symlog time utc ordinal band point quantile quantize threshold"),
    domain=_by_kind(str=_enum("unaggregated"), list=_list(_SCALAR)),
    range=_by_kind(str=_enum("category ordinal heatmap ramp diverging symbol"), list=_list(_range_item)),
    scheme=_by_kind(str=_TEXT, dict=_obj(name=_TEXT, extent=_list(_NUM, 2), count=_NUM)),
)
_BIN = _by_kind(
    bool=_BOOL,
    str=_enum("binned"),
    dict=_obj(nums="maxbins step minstep base anchor", flags="nice binned", steps=_DASH, divide=_DASH, extent=_DASH),
)


_FIELD_DEF: dict[str, Check] = {"field": _field, "type": _enum("quantitative nominal ordinal temporal"), "bin": _BIN}
_FIELD_DEF |= {"aggregate": _enum(_AGGREGATES), "timeUnit": _time_unit, "sort": _sort, "bandPosition": _NUM}
_FIELD_DEF |= {"stack": _by_kind(null=_ANY_NULL, bool=_BOOL, str=_enum("zero normalize center"))}
_FIELD_DEF |= {"scale": _null_ok(_SCALE), "axis": _null_ok(_AXIS), "legend": _null_ok(_LEGEND)}
_FIELD_DEF |= {"title": _null_ok(_TEXTS), "format": _TEXT, "formatType": _FORMAT_TYPE}


def _channel(name: str) -> Check:
    """One encoding channel: a field or constant definition; shapes and colours only from safe sets."""
    value = _SHAPE if name == "shape" else _color if name in ("color", "fill", "stroke") else _SCALAR
    schema: Keywords = _FIELD_DEF | {"value": value, "datum": value}
    if name in ("column", "row", "facet"):
        schema |= {"header": _null_ok(_HEADER), "spacing": _pixels, "columns": _NUM}
    single = _obj(**schema)
    if name in ("tooltip", "order", "detail"):
        return _by_kind(dict=single, list=_list(single, 64), null=_ANY_NULL)
    return single


_MARK_STYLE = "align angle baseline binSpacing blend clip continuousBandSize cornerRadius cornerRadiusEnd "
_MARK_STYLE += "cornerRadiusTopLeft cornerRadiusTopRight cornerRadiusBottomLeft cornerRadiusBottomRight "
_MARK_STYLE += "discreteBandSize dx dy fillOpacity filled font fontSize fontStyle fontWeight innerRadius "
_MARK_STYLE += "interpolate opacity orient outerRadius padAngle radius radius2 radiusOffset size strokeCap "
_MARK_STYLE += "strokeDashOffset strokeJoin strokeMiterLimit strokeOpacity strokeWidth tension theta theta2 thickness"
_MARK_PROPS: Keywords = {"styles": _MARK_STYLE, "colors": "color fill stroke", "shape": _SHAPE}
_MARK_PROPS |= {"strokeDash": _DASH}
_PART = _by_kind(bool=_BOOL, dict=_obj(**_MARK_PROPS))
_PARTS = dict.fromkeys(str.split("line box median outliers rule ticks"), _PART)
_MARK_SIZE = _by_kind(num=_pixels, dict=_obj(band=_NUM))
_MARK_OBJ: Keywords = {**_MARK_PROPS, **_PARTS, "type": _enum(_MARKS), "width": _MARK_SIZE, "height": _MARK_SIZE}
_MARK_OBJ |= {"point": _by_kind(bool=_BOOL, str=_enum("transparent"), dict=_obj(**_MARK_PROPS))}
_MARK_OBJ |= {"extent": _by_kind(str=_enum("min-max"), num=_NUM)}
_MARK = _by_kind(str=_enum(_MARKS), dict=_obj("type", **_MARK_OBJ))
_TITLE_STYLE = "align anchor angle baseline dx dy font fontSize fontStyle fontWeight frame limit lineHeight offset "
_TITLE_STYLE += "orient subtitleFont subtitleFontSize subtitleFontStyle subtitleFontWeight subtitleLineHeight "
_TITLE_STYLE += "subtitlePadding zindex"
_TITLE_OBJ = _obj(styles=_TITLE_STYLE, colors="color subtitleColor", text=_TEXTS, subtitle=_TEXTS)
_TITLE = _by_kind(str=_TEXT, list=_list(_TEXT), dict=_TITLE_OBJ)


_CHANNEL_CHECKS: Keywords = {c: _channel(c) for c in _CHANNELS.split()}
_VIEW: Keywords = {"mark": _MARK, "encoding": _obj(**_CHANNEL_CHECKS), "data": _data}
_VIEW |= {"description": _TEXT, "title": _TITLE}
_SIZE = _by_kind(num=_pixels, dict=_obj(step=_pixels))
_AUTOSIZE = _enum("pad fit fit-x fit-y none")
_RESOLVE_KEYS: Keywords = dict.fromkeys(_CHANNELS.split(), _enum("shared independent"))
_RESOLVE = _obj(**_RESOLVE_KEYS)
_RESOLVE_BY = _obj(scale=_RESOLVE, axis=_RESOLVE, legend=_RESOLVE)
_PADDING = _by_kind(num=_pixels, dict=_obj(left=_pixels, right=_pixels, top=_pixels, bottom=_pixels))
_TOP_ONLY: Keywords = {
    "$schema": _schema_url,
    "layer": _list(_obj("mark", **_VIEW), 16),
    "width": _SIZE,
    "height": _SIZE,
}
_TOP_ONLY |= {"padding": _PADDING, "background": _color, "resolve": _RESOLVE_BY}
_AUTOSIZE_OBJ = _obj(type=_AUTOSIZE, contains=_enum("content padding"), resize=_BOOL)
_TOP_ONLY |= {"autosize": _by_kind(str=_AUTOSIZE, dict=_AUTOSIZE_OBJ)}
TOP = _obj(**_VIEW, **_TOP_ONLY)


def structure(w: Walker, spec: dict[str, Any]) -> None:
    """A single view, or a layer of single views, all drawing from the same one table."""
    if ("mark" in spec) == ("layer" in spec):
        w.bad("", "needs exactly one of 'mark' (a single view) or 'layer' (a list of single views)")
    layers = spec.get("layer") if isinstance(spec.get("layer"), list) else []
    if "data" not in spec and any(not (isinstance(v, dict) and "data" in v) for v in layers or [None]):
        w.bad("/data", "every view needs data naming one output table of this job")
    if len(set(w.tables)) > 1:
        w.bad("/layer", f"all layers must draw from the same table, not {sorted(set(w.tables))}")


__all__ = ["MAX_LIST", "MAX_PIXELS", "SCHEMA_RE", "TABLE_SUFFIXES", "TOP", "Check", "Walker", "structure"]
