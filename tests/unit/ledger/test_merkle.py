"""RFC 9162 Merkle tree: transparency-dev vectors, the reference tree, generated proofs."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from rempart.errors import InvalidInput, VerificationError
from rempart.ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parents[2] / "vectors" / "merkle"


def _vector_files(kind: str) -> list[Path]:
    # Recursive: inclusion/additional/<n>/ nests one level deeper than inclusion/<n>/.
    return sorted((VECTORS / kind).rglob("*.json"))


def _id(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    assert isinstance(data["wantErr"], bool)
    return data


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(data: dict[str, Any]) -> list[bytes]:
    # Some upstream files write an empty proof as null.
    return [_b64(p) for p in data["proof"] or []]


INCLUSION = _vector_files("inclusion")
CONSISTENCY = _vector_files("consistency")


def test_vectors_are_present() -> None:
    # An empty parametrization would silently test nothing.
    assert len(INCLUSION) > 90
    assert len(CONSISTENCY) > 90


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_vector(path: Path) -> None:
    v = _load(path)
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v), _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError, match=r"^expected .*, got "):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_vector(path: Path) -> None:
    v = _load(path)
    args = (v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), _proof(v))
    if v["wantErr"]:
        with pytest.raises(VerificationError, match=r"^expected .*, got "):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def _reference() -> tuple[list[bytes], list[bytes]]:
    ref = json.loads((VECTORS / "reference-tree.json").read_text())
    leaves = [leaf_hash(bytes.fromhex(x)) for x in ref["leaf_inputs_hex"]]
    roots = [bytes.fromhex(x) for x in ref["root_hash_hex_by_size"]]
    return leaves, roots


def test_reference_tree_roots() -> None:
    leaves, roots = _reference()
    assert len(roots) == 9
    for size, want in enumerate(roots):
        assert root_hash(leaves[:size]) == want, size
        assert MemoryTree(leaves).root(size) == want, size


def test_empty_tree_and_prefixes() -> None:
    assert root_hash([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


def _tree(n: int, salt: bytes = b"") -> MemoryTree:
    return MemoryTree([leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)])


BIG = _tree(33)
REWRITTEN = _tree(33, salt=b"rewritten")


@pytest.mark.parametrize("size", range(1, 34))
def test_generated_inclusion_proofs_verify(size: int) -> None:
    root = BIG.root(size)
    for index in range(size):
        proof = BIG.inclusion_proof(index, size)
        verify_inclusion(BIG.subtree_hash(index, index + 1), index, size, proof, root)
        if size > 1:  # the same proof must not prove any other leaf
            other = (index + 1) % size
            with pytest.raises(VerificationError):
                verify_inclusion(BIG.subtree_hash(other, other + 1), index, size, proof, root)


@pytest.mark.parametrize("size2", range(1, 34))
def test_generated_consistency_proofs_verify(size2: int) -> None:
    root2 = BIG.root(size2)
    for size1 in range(1, size2 + 1):
        proof = BIG.consistency_proof(size1, size2)
        verify_consistency(size1, size2, BIG.root(size1), root2, proof)
        if size1 < size2:  # a rewritten old tree must be caught
            with pytest.raises(VerificationError):
                verify_consistency(size1, size2, REWRITTEN.root(size1), root2, proof)


def test_proofs_match_the_rfc_examples() -> None:
    # RFC 9162 §2.1.5: the 7-leaf tree's paths and proofs, in terms of subtrees [start, end).
    tree = _tree(7)
    h = tree.subtree_hash
    assert tree.inclusion_proof(0, 7) == [h(1, 2), h(2, 4), h(4, 7)]
    assert tree.inclusion_proof(3, 7) == [h(2, 3), h(0, 2), h(4, 7)]
    assert tree.inclusion_proof(4, 7) == [h(5, 6), h(6, 7), h(0, 4)]
    assert tree.inclusion_proof(6, 7) == [h(4, 6), h(0, 4)]
    assert tree.consistency_proof(3, 7) == [h(2, 3), h(3, 4), h(0, 2), h(4, 7)]
    assert tree.consistency_proof(4, 7) == [h(4, 7)]
    assert tree.consistency_proof(6, 7) == [h(4, 6), h(6, 7), h(0, 4)]


def test_proof_generation_uses_only_the_callback() -> None:
    tree = _tree(13)
    calls: list[tuple[int, int]] = []

    def get_hash(start: int, end: int) -> bytes:
        calls.append((start, end))
        return tree.subtree_hash(start, end)

    assert inclusion_proof(5, 13, get_hash) == tree.inclusion_proof(5, 13)
    assert consistency_proof(5, 13, get_hash) == tree.consistency_proof(5, 13)
    assert calls


@pytest.mark.parametrize(
    ("index", "size"), [(0, 0), (3, 3), (-1, 3)], ids=["empty", "past-end", "negative"]
)
def test_inclusion_proof_of_a_missing_leaf(index: int, size: int) -> None:
    with pytest.raises(InvalidInput, match=r"^expected"):
        inclusion_proof(index, size, _tree(3).subtree_hash)


@pytest.mark.parametrize(("size1", "size2"), [(0, 3), (4, 3), (-1, 3)])
def test_consistency_proof_out_of_range(size1: int, size2: int) -> None:
    with pytest.raises(InvalidInput, match=r"^expected"):
        consistency_proof(size1, size2, _tree(3).subtree_hash)


def test_memory_tree_range_checks() -> None:
    tree = _tree(3)
    assert tree.root(0) == EMPTY_ROOT
    for start, end in [(0, 4), (2, 2), (-1, 1)]:
        with pytest.raises(InvalidInput):
            tree.subtree_hash(start, end)


def test_negative_arguments_are_rejected_not_looped_on() -> None:
    tree = _tree(4)
    proof = tree.inclusion_proof(1, 4)
    with pytest.raises(VerificationError, match="non-negative"):
        verify_inclusion(tree.subtree_hash(1, 2), -1, 4, proof, tree.root())
    with pytest.raises(VerificationError, match="non-negative"):
        verify_consistency(-2, 4, tree.root(), tree.root(), proof)


def test_short_proof_hash_is_rejected() -> None:
    tree = _tree(4)
    proof = tree.inclusion_proof(1, 4)
    proof[0] = proof[0][:31]
    with pytest.raises(VerificationError, match=r"^expected proof hash 0 of 32 bytes, got 31"):
        verify_inclusion(tree.subtree_hash(1, 2), 1, 4, proof, tree.root())


def test_root_mismatch_message_gives_both_hashes() -> None:
    tree = _tree(4)
    wrong = bytes(32)
    with pytest.raises(VerificationError) as caught:
        verify_inclusion(tree.subtree_hash(1, 2), 1, 4, tree.inclusion_proof(1, 4), wrong)
    assert caught.value.detail == f"expected root {wrong.hex()}, got {tree.root().hex()}"


def test_frontier_root_matches_definition() -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(100)]
    frontier = Frontier()
    assert frontier.root() == EMPTY_ROOT
    for size in range(1, 101):
        frontier.append(leaves[size - 1])
        want = root_hash(leaves[:size])
        assert frontier.size == size
        assert frontier.root() == want, size
        restored = Frontier.from_hashes(frontier.size, frontier.hashes)
        assert restored.root() == want, size
        # The restored frontier keeps working: the next append gives the next root.
        if size < 100:
            restored.append(leaves[size])
            assert restored.root() == root_hash(leaves[: size + 1]), size


def test_frontier_subtrees_are_the_complete_subtrees() -> None:
    tree = _tree(21)
    frontier = Frontier()
    for i in range(21):
        frontier.append(tree.subtree_hash(i, i + 1))
        last_start, last_end, last_hash = frontier.subtrees()[-1]
        assert last_end == i + 1  # the subtree the new leaf just completed
        assert last_hash == tree.subtree_hash(last_start, last_end)
    spans = [(start, end) for start, end, _ in frontier.subtrees()]
    assert spans == [(0, 16), (16, 20), (20, 21)]  # 21 = 0b10101
    assert [h for _, _, h in frontier.subtrees()] == frontier.hashes


def test_frontier_hashes_is_a_copy() -> None:
    frontier = Frontier()
    frontier.append(leaf_hash(b"x"))
    frontier.hashes.clear()
    assert frontier.root() == leaf_hash(b"x")


@pytest.mark.parametrize(
    ("size", "hashes"),
    [(3, [bytes(32)]), (1, [bytes(32), bytes(32)]), (1, [bytes(31)]), (-1, [])],
    ids=["too-few", "too-many", "short-hash", "negative-size"],
)
def test_frontier_rejects_corrupt_state(size: int, hashes: list[bytes]) -> None:
    with pytest.raises(VerificationError, match=r"^expected"):
        Frontier.from_hashes(size, hashes)
