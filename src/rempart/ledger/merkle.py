"""Merkle tree hashing, proofs and their verification, as in RFC 9162 §2.1.

- Hashing (§2.1.1): a leaf is ``SHA-256(0x00 || data)``, an interior node is
  ``SHA-256(0x01 || left || right)``, a tree of n > 1 leaves splits at the largest power of two
  strictly below n, and the empty tree hashes to ``SHA-256("")``.
- Inclusion proofs: generation §2.1.3.1 (``PATH``), verification §2.1.3.2.
- Consistency proofs: generation §2.1.4.1 (``PROOF``/``SUBPROOF``), verification §2.1.4.2.
  Those are defined for ``0 < first < second`` only, plus the empty proof between equal sizes;
  a proof from the empty tree proves nothing and is rejected (as transparency-dev/merkle does).

Pure: hashlib only, no I/O, no clock. Proof generation reads subtree hashes through a
``get_hash(start, end)`` callback so that storage can serve precomputed subtrees, and
:class:`Frontier` keeps the root of an append-only log in O(log n) space and time per leaf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from rempart.errors import InvalidInput, VerificationError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

GetHash = Callable[[int, int], bytes]
"""``get_hash(start, end)``: root hash of the subtree made of leaves ``[start, end)``."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf (RFC 9162 §2.1.1)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node (RFC 9162 §2.1.1)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaf hashes, by its definition (the reference; :class:`Frontier` is faster)."""

    def mth(start: int, end: int) -> bytes:
        if end - start == 1:
            return leaf_hashes[start]
        k = _split(end - start)
        return node_hash(mth(start, start + k), mth(start + k, end))

    return mth(0, len(leaf_hashes)) if leaf_hashes else EMPTY_ROOT


# --- Proof generation ---------------------------------------------------------------------------


def inclusion_proof(index: int, size: int, get_hash: GetHash) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, leaf-side sibling first."""
    if not 0 <= index < size:
        raise InvalidInput(f"expected a leaf index in [0, {size}), got {index}", field="index")
    siblings: list[bytes] = []
    start, end = 0, size
    # Walk from the root down to the leaf; the RFC lists siblings from the leaf up.
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            siblings.append(get_hash(start + k, end))
            end = start + k
        else:
            siblings.append(get_hash(start, start + k))
            start += k
    siblings.reverse()
    return siblings


def consistency_proof(size1: int, size2: int, get_hash: GetHash) -> list[bytes]:
    """PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1; empty when the sizes are equal."""
    if not 0 < size1 <= size2:
        raise InvalidInput(
            f"expected sizes with 0 < size1 <= size2, got size1={size1}, size2={size2}",
            field="size1",
        )
    nodes: list[bytes] = []
    start, end, m = 0, size2, size1  # m counts the old leaves inside [start, end)
    old_is_whole_subtree = True  # SUBPROOF's flag b: the old tree's root is a node of this one
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            nodes.append(get_hash(start + k, end))
            end = start + k
        else:
            nodes.append(get_hash(start, start + k))
            start, m = start + k, m - k
            old_is_whole_subtree = False
    if not old_is_whole_subtree:
        nodes.append(get_hash(start, end))
    nodes.reverse()
    return nodes


# --- Proof verification -------------------------------------------------------------------------


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise VerificationError(
                f"expected proof hash {i} of {HASH_SIZE} bytes, got {len(node)} bytes"
            )


def _check_root(kind: str, expected: bytes, computed: bytes) -> None:
    if computed != expected:
        raise VerificationError(f"expected {kind} {expected.hex()}, got {computed.hex()}")


def _inclusion_proof_length(index: int, size: int) -> int:
    # Levels where the path to ``index`` and the path to the last leaf diverge each contribute
    # a sibling; above that, the path runs along the right border, one sibling per set bit.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    RFC 9162 §2.1.3.2, step for step. Raises :class:`VerificationError` on any failure.
    """
    if index < 0 or size < 0:
        raise VerificationError(
            f"expected a non-negative index and size, got index={index}, size={size}"
        )
    if index >= size:  # step 1
        raise VerificationError(f"expected a leaf index below the tree size {size}, got {index}")
    # Not an RFC step, but the RFC loop would reject the same proofs: this just says why.
    want = _inclusion_proof_length(index, size)
    if len(proof) != want:
        raise VerificationError(
            f"expected an inclusion proof of {want} hashes for leaf {index} of {size}, "
            f"got {len(proof)}"
        )
    # Otherwise an empty "leaf hash" would prove itself as the root of an empty "tree of one".
    if len(leaf_hash) != HASH_SIZE:
        raise VerificationError(
            f"expected a leaf hash of {HASH_SIZE} bytes, got {len(leaf_hash)} bytes"
        )
    _check_proof_hashes(proof)
    fn, sn = index, size - 1  # step 2
    r = leaf_hash  # step 3
    for p in proof:  # step 4
        if sn == 0:
            raise VerificationError("expected the proof to end at the root, got extra hashes")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # step 5
        raise VerificationError(f"expected the proof to reach the root, got {sn} levels short")
    _check_root("root", root, r)


def _consistency_proof_length(size1: int, size2: int) -> int:
    # The inclusion path of the old tree's last leaf, minus the levels inside the largest
    # complete subtree it ends, plus the seed hash unless the old tree is itself complete.
    shift = (size1 & -size1).bit_length() - 1
    inner = (((size1 - 1) ^ (size2 - 1)).bit_length()) - shift
    border = ((size1 - 1) >> (inner + shift)).bit_count()
    seed = 0 if size1 == 1 << shift else 1
    return seed + inner + border


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (``size2``, ``root2``) extends the tree (``size1``, ``root1``).

    RFC 9162 §2.1.4.2, step for step, for ``0 < size1 < size2``; equal sizes need an empty proof
    and equal roots. Raises :class:`VerificationError` on any failure.
    """
    if size1 < 0 or size2 < 0:
        raise VerificationError(
            f"expected non-negative tree sizes, got size1={size1}, size2={size2}"
        )
    if size2 < size1:
        raise VerificationError(f"expected size2 >= size1 = {size1}, got size2={size2}")
    if size1 == 0:
        # The empty tree is a prefix of every tree: such a "proof" would commit to nothing.
        raise VerificationError(f"expected size1 > 0, got size1={size1}")
    if size1 == size2:
        if proof:
            raise VerificationError(
                f"expected an empty proof between equal sizes, got {len(proof)} hashes"
            )
        _check_root("root2", root1, root2)
        return
    if not proof:  # step 1
        raise VerificationError("expected a non-empty consistency proof, got 0 hashes")
    want = _consistency_proof_length(size1, size2)
    if len(proof) != want:
        raise VerificationError(
            f"expected a consistency proof of {want} hashes from {size1} to {size2}, "
            f"got {len(proof)}"
        )
    _check_proof_hashes(proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2: first is a power of two
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise VerificationError("expected the proof to end at the root, got extra hashes")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # step 7
    if sn != 0:
        raise VerificationError(f"expected the proof to reach the root, got {sn} levels short")
    _check_root("root1", root1, fr)
    _check_root("root2", root2, sr)


# --- Trees --------------------------------------------------------------------------------------


class MemoryTree:
    """An in-memory tree of leaf hashes; a reference for tests and small logs."""

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._leaves: list[bytes] = list(leaf_hashes)
        # Only complete power-of-two subtrees: they never change as leaves are appended and
        # there are at most 2n of them, whereas right-edge subtrees differ for every size.
        self._cache: dict[tuple[int, int], bytes] = {}

    @property
    def size(self) -> int:
        return len(self._leaves)

    def append(self, leaf_hash: bytes) -> None:
        self._leaves.append(leaf_hash)

    def subtree_hash(self, start: int, end: int) -> bytes:
        """The root hash of the subtree of leaves ``[start, end)``."""
        if not 0 <= start < end <= self.size:
            raise InvalidInput(
                f"expected a leaf range within [0, {self.size}), got [{start}, {end})",
                field="range",
            )
        return self._hash(start, end)

    def _hash(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 1:
            return self._leaves[start]
        cached = self._cache.get((start, end))
        if cached is not None:
            return cached
        k = _split(n)
        h = node_hash(self._hash(start, start + k), self._hash(start + k, end))
        if n & (n - 1) == 0:
            self._cache[(start, end)] = h
        return h

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves (default: all of them)."""
        size = self.size if size is None else size
        if size == 0:
            return EMPTY_ROOT
        return self.subtree_hash(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof(index, size, self.subtree_hash)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return consistency_proof(size1, size2, self.subtree_hash)


class Frontier:
    """The roots of the complete subtrees that make up a log's prefix, largest first.

    A log of n leaves has one such subtree per set bit of n (a "compact range" from 0 to n).
    Appending a leaf merges equal-sized subtrees like a binary carry, and the root folds them
    from the right: both O(log n), so a log of tens of millions of leaves never rehashes its past.
    """

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        """Restore a frontier saved with :attr:`size` and :attr:`hashes`."""
        if size < 0:
            raise VerificationError(f"expected a non-negative frontier size, got {size}")
        if len(hashes) != size.bit_count():
            raise VerificationError(
                f"expected {size.bit_count()} frontier hashes for size {size}, got {len(hashes)}"
            )
        for i, h in enumerate(hashes):
            if len(h) != HASH_SIZE:
                raise VerificationError(
                    f"expected frontier hash {i} of {HASH_SIZE} bytes, got {len(h)} bytes"
                )
        frontier = cls()
        frontier._size = size
        frontier._hashes = list(hashes)
        return frontier

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        """The subtree roots, largest (leftmost) first; a copy, safe to persist."""
        return list(self._hashes)

    def subtrees(self) -> list[tuple[int, int, bytes]]:
        """``(start, end, hash)`` of each complete subtree, leftmost first.

        The last one right after :meth:`append` is the subtree that leaf completed: storage can
        keep it to serve ``get_hash`` for proofs without rehashing leaves.
        """
        ranges: list[tuple[int, int, bytes]] = []
        start = 0
        bits = [b for b in range(self._size.bit_length() - 1, -1, -1) if self._size >> b & 1]
        for bit, h in zip(bits, self._hashes, strict=True):
            ranges.append((start, start + (1 << bit), h))
            start += 1 << bit
        return ranges

    def append(self, leaf_hash: bytes) -> None:
        h = leaf_hash
        n = self._size
        while n & 1:  # each trailing 1 bit is a subtree of the same size to merge with
            h = node_hash(self._hashes.pop(), h)
            n >>= 1
        self._hashes.append(h)
        self._size += 1

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r
