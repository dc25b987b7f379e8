"""A mask's exact outline as polygons along pixel edges, for formats that take polygons only (YOLO). Pure numpy.

Vertices are pixel corners: pixel (row r, column c) is the square from (c, r) to (c + 1, r + 1),
as COCO and YOLO count. Each 8-connected part of the mask becomes one closed polygon; a hole in
it is joined to the outline by a cut of zero width along a pixel edge, so filling the polygon
(even-odd or non-zero, sampled at pixel centres) gives back exactly the part, holes included.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import numpy.typing as npt

Vertex = tuple[int, int]  # (x, y): a pixel corner


def mask_outlines(mask: npt.NDArray[Any]) -> list[list[Vertex]]:
    """One polygon per 8-connected part of ``mask``, ordered by their top-left vertex; collinear vertices merged."""
    mask = np.asarray(mask, dtype=bool)
    # Loops are linked lists of vertex occurrences (node -> next node), so a hole splices in at O(1).
    where: list[Vertex] = []
    after: list[int] = []
    node_of: dict[tuple[Vertex, Vertex], int] = {}  # directed edge -> the node at its start
    outers: list[tuple[tuple[int, int], int]] = []  # (top-left (y, x), first node) per loop
    holes: list[tuple[tuple[int, int], int]] = []
    for loop in _loops(mask):
        first = len(where)
        for i, vertex in enumerate(loop):
            where.append(vertex)
            after.append(first + (i + 1) % len(loop))
            node_of[(vertex, loop[(i + 1) % len(loop)])] = first + i
        (outers if _signed_area(loop) > 0 else holes).append((_top_left(loop), first))
    for (y, x), _ in sorted(holes):
        # Holes go top to bottom, so the edge straight above a hole's top-left corner (x, y) is on an
        # outline that already holds every hole above this one: the cut runs up to it through the part.
        top = y - 1
        while top >= 0 and mask[top, x]:
            top -= 1
        target = node_of[((x, top + 1), (x + 1, top + 1))]  # background above, the part below: eastwards
        start = node_of[((x, y), (x, y + 1))]  # the hole's left side, going down from its corner
        last = node_of[((x + 1, y), (x, y))]  # its top side, coming back to the corner
        back, up = len(where), len(where) + 1
        where.extend([(x, y), where[target]])
        after.extend([up, after[target]])
        after[target], after[last] = start, back
    polygons = []
    for _, first in outers:
        loop, node = [where[first]], after[first]
        while node != first:
            loop.append(where[node])
            node = after[node]
        polygons.append(_simplified(loop))
    return sorted(polygons, key=_top_left)


def _loops(mask: npt.NDArray[np.bool_]) -> list[list[Vertex]]:
    """Every boundary loop, walked with the mask on the right (screen coordinates, y down).

    Where two pixels touch only at a corner the walk turns left, which keeps them in one loop:
    the mask's parts are 8-connected and its holes 4-connected.
    """
    rows, columns = mask.shape
    padded = np.zeros((rows + 2, columns + 2), dtype=bool)
    padded[1:-1, 1:-1] = mask
    nexts: dict[Vertex, list[Vertex]] = defaultdict(list)
    # Horizontal edges on the line y, between pixel rows y - 1 and y.
    above, below = padded[:-1, 1:-1], padded[1:, 1:-1]
    for y, x in zip(*np.nonzero(~above & below), strict=True):
        nexts[(int(x), int(y))].append((int(x) + 1, int(y)))  # east
    for y, x in zip(*np.nonzero(above & ~below), strict=True):
        nexts[(int(x) + 1, int(y))].append((int(x), int(y)))  # west
    # Vertical edges on the line x, between pixel columns x - 1 and x.
    left, right = padded[1:-1, :-1], padded[1:-1, 1:]
    for y, x in zip(*np.nonzero(left & ~right), strict=True):
        nexts[(int(x), int(y))].append((int(x), int(y) + 1))  # south
    for y, x in zip(*np.nonzero(~left & right), strict=True):
        nexts[(int(x), int(y) + 1)].append((int(x), int(y)))  # north
    loops = []
    for start in sorted(nexts, key=lambda v: (v[1], v[0])):
        while nexts[start]:
            loop, here, there = [start], start, nexts[start].pop()
            while there != start:
                loop.append(there)
                step = (there[0] - here[0], there[1] - here[1])
                turn_left = (there[0] + step[1], there[1] - step[0])
                choices = nexts[there]
                here, there = there, choices.pop(choices.index(turn_left) if turn_left in choices else 0)
            loops.append(loop)
    return loops


def _signed_area(loop: list[Vertex]) -> int:
    """Twice the shoelace area: positive for an outline (clockwise on screen), negative for a hole."""
    return sum(xa * yb - xb * ya for (xa, ya), (xb, yb) in zip(loop, loop[1:] + loop[:1], strict=True))


def _top_left(loop: list[Vertex]) -> tuple[int, int]:
    """(y, x) of the loop's topmost, then leftmost, vertex."""
    return min((y, x) for x, y in loop)


def _direction(xa: int, ya: int, xb: int, yb: int) -> tuple[int, int]:
    return ((xb > xa) - (xb < xa), (yb > ya) - (yb < ya))


def _simplified(loop: list[Vertex]) -> list[Vertex]:
    """Without vertices in the middle of a straight run, starting at the top-left vertex."""
    count = len(loop)
    kept = []
    for i, (x, y) in enumerate(loop):
        px, py = loop[i - 1]
        nx, ny = loop[(i + 1) % count]
        if _direction(px, py, x, y) != _direction(x, y, nx, ny):
            kept.append((x, y))
    y, x = _top_left(kept)
    start = kept.index((x, y))
    return kept[start:] + kept[:start]
