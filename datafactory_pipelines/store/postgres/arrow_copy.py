"""Moving tables between PostgreSQL and Arrow in bulk: COPY in CSV, written and parsed by Arrow's C++ CSV code.

Row-by-row transfer through the driver costs microseconds per value (minutes at a million records); COPY
streams the whole table in one statement and Arrow reads and writes CSV at hundreds of MB/s. NULL and the
empty string stay apart: Arrow quotes every string it writes ("" is an empty string, an unquoted empty
field is NULL), which is what PostgreSQL's CSV COPY reads, and the other way round.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import psycopg
    import pyarrow as pa

#: PostgreSQL type oid -> Arrow type name (what a result column becomes)
_ARROW_BY_OID = {
    16: "bool", 20: "int64", 21: "int16", 23: "int32", 26: "int64", 700: "float32", 701: "float64",
    1700: "float64", 1114: "timestamp", 1184: "timestamptz", 1082: "date32",
}
#: Arrow type -> the PostgreSQL column type a registered table gets
_PG_BY_ARROW = (
    ("bool", "BOOLEAN"), ("int", "BIGINT"), ("uint", "BIGINT"), ("float", "DOUBLE PRECISION"),
    ("double", "DOUBLE PRECISION"), ("timestamp[us, tz", "TIMESTAMPTZ"), ("timestamp[ns, tz", "TIMESTAMPTZ"),
    ("timestamp[ms, tz", "TIMESTAMPTZ"), ("timestamp[s, tz", "TIMESTAMPTZ"), ("timestamp", "TIMESTAMP"),
    ("date", "DATE"),
)


def arrow_type(oid: int) -> pa.DataType:
    import pyarrow as pa

    name = _ARROW_BY_OID.get(oid, "string")
    if name == "timestamp":
        return pa.timestamp("us")
    if name == "timestamptz":
        return pa.timestamp("us", tz="UTC")
    return getattr(pa, name)() if name != "bool" else pa.bool_()


def pg_type(arrow: pa.DataType) -> str:
    text = str(arrow)
    for prefix, pg in _PG_BY_ARROW:
        if text.startswith(prefix):
            return pg
    return "TEXT"


def as_arrow(data: Any) -> pa.Table:
    """A pandas frame, Arrow table or record batch reader as an Arrow table PostgreSQL can take: strings
    without NUL (PostgreSQL text cannot hold it), dictionaries decoded, mixed object columns as text."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(data, pa.RecordBatchReader):
        table = data.read_all()
    elif isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pd.DataFrame):
        table = _frame_to_arrow(data)
    else:
        raise TypeError(f"cannot register a {type(data).__name__}")
    columns = []
    for column in table.columns:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        if pa.types.is_string(column.type):
            column = pc.replace_substring(column, "\x00", "")
        elif pa.types.is_null(column.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # an object column of mixed kinds: its values as text
        fixed = frame.copy()
        for name in fixed.columns:
            if fixed[name].dtype == object:
                try:
                    pa.array(fixed[name], from_pandas=True)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    fixed[name] = fixed[name].map(lambda v: None if v is None or v != v else str(v))
        return pa.Table.from_pandas(fixed, preserve_index=False)


def copy_in(cur: psycopg.Cursor, table_name: str, table: pa.Table) -> None:
    """Append `table`'s rows to `table_name` (same column names) with one COPY."""
    import pyarrow.csv as pcsv

    if not table.num_rows:
        return
    columns = ", ".join(f'"{name}"' for name in table.column_names)
    buffer = io.BytesIO()
    pcsv.write_csv(table, buffer, pcsv.WriteOptions(include_header=False))
    with cur.copy(f"COPY {table_name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        view = buffer.getbuffer()
        for start in range(0, len(view), 1 << 20):
            copy.write(view[start:start + (1 << 20)])


def copy_out(cur: psycopg.Cursor, sql: str) -> pa.Table:
    """The rows of the query `sql` (a SELECT, parameters already bound), typed from PostgreSQL's own
    description of the result, through one COPY."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    cur.execute(f"SELECT * FROM ({sql}) AS described LIMIT 0")
    names = [d.name for d in cur.description]
    types = [arrow_type(d.type_code) for d in cur.description]
    unique = [f"c{i}" for i in range(len(names))]  # a result may repeat a column name
    buffer = io.BytesIO()
    with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
        for chunk in copy:
            buffer.write(chunk)
    if not buffer.tell():
        return pa.table([pa.array([], t) for t in types], names=names)
    buffer.seek(0)
    table = pcsv.read_csv(
        buffer,
        read_options=pcsv.ReadOptions(column_names=unique, block_size=1 << 24),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(column_types=dict(zip(unique, types, strict=True)),
                                            strings_can_be_null=True, quoted_strings_can_be_null=False,
                                            true_values=["t"], false_values=["f"]))
    return table.rename_columns(names)


def frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow result as DuckDB's `.df()` gives it: text as objects, integers and booleans with NULLs as
    pandas' nullable Int64 / boolean (without NULLs: int64 / bool)."""
    import pandas as pd
    import pyarrow as pa

    result = table.to_pandas()
    for position, column in enumerate(table.columns):
        if column.null_count and (pa.types.is_integer(column.type) or pa.types.is_boolean(column.type)):
            nullable = pd.BooleanDtype() if pa.types.is_boolean(column.type) else pd.Int64Dtype()
            result.isetitem(position, column.to_pandas(types_mapper=lambda _t, d=nullable: d))
    return result
