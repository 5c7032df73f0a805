"""What every rankzc plot shares (matplotlib, Agg backend): a style per line, legends
outside the data, integer ticks on integer axes.

- :func:`line_styles`: ``n`` (colour, marker) pairs, all distinct in colour *and* in marker
  for up to :data:`MAX_STYLES` lines (14 proxies included), so a line can be told apart in
  grey-scale print or by a colour-blind reader.
- :func:`legend_outside`: the legend to the right of the axes, never over the data.
- :func:`integer_ticks`: major ticks on whole numbers only (epochs, architectures trained,
  training-set sizes).
"""

from __future__ import annotations

from typing import Any

#: 14 colours that differ in hue or lightness (matplotlib's tab10, then four more that
#: none of them resembles)
COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#b8860b", "#000080", "#66cdaa",
)  # fmt: skip
#: 14 filled markers
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">", "p", "d", "8")
#: lines that get a colour and a marker none of the others has
MAX_STYLES = min(len(COLOURS), len(MARKERS))


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def line_styles(n: int) -> list[dict[str, Any]]:
    """``n`` keyword sets for ``ax.plot``: colour and marker both distinct up to
    :data:`MAX_STYLES` lines; beyond, the pairs stay distinct (dashed lines repeat the
    colours with shifted markers)."""
    out = []
    for i in range(n):
        k, lap = i % MAX_STYLES, i // MAX_STYLES
        out.append(
            {
                "color": COLOURS[k],
                "marker": MARKERS[(k + lap) % len(MARKERS)],
                "linestyle": ("-", "--", ":", "-.")[lap % 4],
            }
        )
    return out


def legend_outside(ax, handles=None, labels=None, **kwargs):
    """A legend to the right of ``ax``, outside the data area (save with
    ``bbox_inches="tight"`` or a constrained layout so it is not cut off)."""
    args = [] if handles is None else [handles, labels]
    return ax.legend(
        *args, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs
    )


def integer_ticks(axis) -> None:
    """Major ticks of ``axis`` (``ax.xaxis``) on whole numbers only."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
