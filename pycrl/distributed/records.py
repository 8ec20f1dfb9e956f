"""Output records and part-file names shared by the writer and the resume reader.

A record is ``Result.to_dict()``. JSON Lines parts hold it verbatim; Parquet
parts hold it under a fixed Arrow schema, so that parts written by different
runs (say, one with only error records) always read back as one table.
"""

from __future__ import annotations

FORMATS = ("jsonl", "parquet")
SUFFIXES = {"jsonl": ".jsonl", "parquet": ".parquet"}
PART_PREFIX = "part-"
# Parts are written under a hidden temporary name and renamed when whole;
# readers never look at names starting with a dot.
TMP_PREFIX = "."
TMP_SUFFIX = ".tmp"


def check_format(output_format: str) -> str:
    if output_format not in FORMATS:
        raise ValueError(f"output_format: expected one of {FORMATS}, got {output_format!r}")
    return output_format


def is_part(name: str) -> bool:
    """A finished part file (of either format)."""
    return name.startswith(PART_PREFIX) and name.endswith(tuple(SUFFIXES.values()))


def arrow_schema():
    """The Parquet schema of a record: `Result`'s JSON fields, typed."""
    import pyarrow as pa

    face = pa.struct([
        ("frame_index", pa.int64()),
        ("timestamp", pa.float64()),
        ("box", pa.list_(pa.float64())),
        ("score", pa.float64()),
        ("compactness", pa.float64()),
        ("track", pa.int64()),
    ])
    point = pa.struct([
        ("frame_index", pa.int64()),
        ("timestamp", pa.float64()),
        ("score", pa.float64()),
        ("box", pa.list_(pa.float64())),
    ])
    track = pa.struct([
        ("id", pa.int64()),
        ("score", pa.float64()),
        ("label", pa.string()),
        ("faces", pa.int64()),
        ("counted", pa.bool_()),
        ("timeline", pa.list_(point)),
    ])
    credentials = pa.struct([
        ("state", pa.string()),
        ("claim_generator", pa.string()),
        ("signer", pa.string()),
        ("declares", pa.string()),
        ("digital_source_types", pa.list_(pa.string())),
        ("actions", pa.list_(pa.string())),
        ("failures", pa.list_(pa.string())),
        ("message", pa.string()),
    ])
    return pa.schema([
        ("source", pa.string()),
        ("status", pa.string()),
        ("score", pa.float64()),
        ("label", pa.string()),
        ("threshold", pa.float64()),
        ("operating_point", pa.string()),
        ("aggregation", pa.string()),
        ("score_rule", pa.string()),
        ("compactness", pa.float64()),
        ("frames_sampled", pa.int64()),
        ("faces", pa.list_(face)),
        ("tracks", pa.list_(track)),
        ("message", pa.string()),
        ("notices", pa.list_(pa.string())),
        ("content_credentials", credentials),
        ("error_type", pa.string()),
        ("timings", pa.map_(pa.string(), pa.float64())),  # stage names vary by decoder
        ("model", pa.string()),
        ("backend", pa.string()),
    ])


def to_table(records: list[dict]):
    """Records as an Arrow table; a field the schema lacks is an error, never silently dropped."""
    import pyarrow as pa

    schema = arrow_schema()
    for rec in records:
        extra = set(rec) - set(schema.names)
        if extra:
            raise ValueError(f"record fields {sorted(extra)} are not in the Parquet schema "
                             "(pycrl.distributed.records.arrow_schema): update it with Result")
    return pa.Table.from_pylist(records, schema=schema)


def from_table(table) -> list[dict]:
    """Records read from Parquet, in ``Result.to_dict()`` shape (Arrow maps back to dicts)."""
    rows = table.to_pylist()
    for row in rows:
        if isinstance(row.get("timings"), list):
            row["timings"] = dict(row["timings"])
    return rows
