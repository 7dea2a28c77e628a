"""The insurers' ledger API: query and answers. Hashes are standard base64, as in checkpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_PAGE = 1000


class PublicKeyResponse(BaseModel):
    origin: str = Field(description="The log's name: the first line of every checkpoint.")
    verifier_key: str = Field(
        description="Signed-note verifier key <name>+<key ID>+<key>: keep it once, offline."
    )


class CheckpointResponse(BaseModel):
    note: str = Field(description="The signed checkpoint (C2SP tlog-checkpoint): keep it as is.")


class ConsistencyResponse(BaseModel):
    from_size: int
    to_size: int
    proof: list[str] = Field(description="RFC 9162 consistency proof, base64 hashes.")


class EventsQuery(BaseModel):
    """A page of the insurer's events; unknown parameters are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")

    after: int = Field(-1, ge=-1, description="The last sequence number already read.")
    limit: int = Field(100, ge=1, le=MAX_PAGE)
    size: int | None = Field(
        None, ge=0, description="Tree size to prove in (default: the latest checkpoint's)."
    )


class LedgerEvent(BaseModel):
    """One event, and the proof that it is leaf ``seq`` of the tree of ``tree_size`` leaves."""

    seq: int
    tree_size: int
    event: str = Field(description="The canonical encoding (JSON text): the leaf, byte for byte.")
    leaf_hash: str = Field(description="SHA-256(0x00 || event), base64.")
    proof: list[str] = Field(description="RFC 9162 inclusion proof, leaf side first, base64.")


class EventsResponse(BaseModel):
    tree_size: int
    root: str = Field(description="The root of the tree the proofs lead to, base64.")
    checkpoint: str | None = Field(
        description="The signed checkpoint of tree_size, when there is one: check it, not root."
    )
    events: list[LedgerEvent]
    next_after: int | None = Field(
        description="Give it as `after` for the next page; null when this page is the last."
    )
