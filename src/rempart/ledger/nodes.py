"""The Merkle tree as stored: every complete subtree's root, addressed by (level, index).

Pure arithmetic on RFC 9162 trees. The subtree at level ``l`` and index ``i`` covers leaves
[i·2^l, (i+1)·2^l). Appending a leaf completes one node per trailing 1 bit of the old size; the
"frontier" (the complete subtrees making up a prefix, one per set bit of its size) is all that
an append needs, so a log of any size is extended in O(log n).
"""

from __future__ import annotations

from collections.abc import Callable

from rempart.ledger.merkle import EMPTY_ROOT, node_hash

Node = tuple[int, int]  # (level, index)


def frontier(size: int) -> list[Node]:
    """The complete subtrees that make up a tree of ``size`` leaves, largest first."""
    nodes, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def append(size: int, leaf: bytes, left_siblings: dict[int, bytes]) -> list[tuple[int, int, bytes]]:
    """Append leaf number ``size``: the nodes it completes, the leaf first.

    ``left_siblings`` maps a level to the hash of the frontier's subtree at that level; it is
    updated in place, so that appending a batch needs no look-up after the first.
    """
    completed = [(0, size, leaf)]
    level, index, current = 0, size, leaf
    while index & 1:
        current = node_hash(left_siblings.pop(level), current)
        level, index = level + 1, index >> 1
        completed.append((level, index, current))
    left_siblings[level] = current
    return completed


def subtree_hash(start: int, end: int, stored: Callable[[int, int], bytes]) -> bytes:
    """The root of leaves [start, end) from stored complete subtrees (RFC 9162 §2.1.1 split)."""
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return stored(level, start >> level)
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(subtree_hash(start, start + k, stored), subtree_hash(start + k, end, stored))


def frontier_root(left_siblings: dict[int, bytes]) -> bytes:
    """The root of the tree whose frontier is ``left_siblings`` (level -> subtree root)."""
    root: bytes | None = None
    for level in sorted(left_siblings):  # smallest subtree first: it is the rightmost
        root = left_siblings[level] if root is None else node_hash(left_siblings[level], root)
    return EMPTY_ROOT if root is None else root
