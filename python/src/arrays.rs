//! Vector inputs from Python: anything with the Arrow PyCapsule interface (pyarrow, polars,
//! DuckDB, nanoarrow, arro3) or the buffer protocol (a C-contiguous 2-d numpy array,
//! read as `FixedSizeList<float, D>` without a copy), through pyo3-arrow.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, StructArray};
use arrow_schema::{DataType, FieldRef};
use pyo3::prelude::*;
use pyo3_arrow::input::AnyArray;

use crate::errors::{to_py, value_error};

/// One vector column: the values (one array: chunks are concatenated) and its field (with
/// any embquant metadata it carried).
pub(crate) struct Column {
    pub(crate) array: ArrayRef,
    pub(crate) field: FieldRef,
}

fn is_vector(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::FixedSizeList(..) | DataType::List(_) | DataType::LargeList(_)
    )
}

fn is_code(dt: &DataType) -> bool {
    is_vector(dt) || matches!(dt, DataType::FixedSizeBinary(_))
}

/// Reads `obj` as one column. A table, record batch or struct picks `column`, or its only
/// column that `accept` takes.
pub(crate) fn column(
    obj: &Bound<'_, PyAny>,
    column: Option<&str>,
    accept: fn(&DataType) -> bool,
) -> PyResult<Column> {
    let any: AnyArray = obj.extract().map_err(|e| {
        value_error(format!(
            "expected an Arrow array, table or stream (an object with __arrow_c_array__ or __arrow_c_stream__) or a 2-d numpy array, got {}: {e}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    })?;
    let (chunks, field) = any.into_chunked_array()?.into_inner();
    let array: ArrayRef = match chunks.len() {
        0 => arrow_array::new_empty_array(field.data_type()),
        1 => chunks.into_iter().next().expect("one chunk"),
        _ => {
            let refs: Vec<&dyn Array> = chunks.iter().map(|a| a.as_ref()).collect();
            arrow_select::concat::concat(&refs).map_err(|e| to_py(e.into()))?
        }
    };
    match array.data_type() {
        DataType::Struct(fields) => {
            let s = array
                .as_any()
                .downcast_ref::<StructArray>()
                .expect("a struct type is a StructArray");
            let index = match column {
                Some(name) => fields
                    .iter()
                    .position(|f| f.name() == name)
                    .ok_or_else(|| {
                        to_py(embquant::Error::MissingColumn {
                            column: name.to_string(),
                            available: fields
                                .iter()
                                .map(|f| f.name().as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                        })
                    })?,
                None => {
                    let found: Vec<usize> = fields
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| accept(f.data_type()))
                        .map(|(i, _)| i)
                        .collect();
                    match found.as_slice() {
                        [i] => *i,
                        _ => {
                            return Err(value_error(format!(
                                "the table has {} candidate vector columns ({}): pass column=",
                                found.len(),
                                fields
                                    .iter()
                                    .map(|f| format!("{}: {}", f.name(), f.data_type()))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )))
                        }
                    }
                }
            };
            let mut array = Arc::clone(s.column(index));
            // A null struct row (a null table row) is a null vector.
            if let Some(n) = s.nulls() {
                let merged = arrow_buffer::NullBuffer::union(Some(n), array.nulls());
                array = arrow_array::make_array(
                    array
                        .to_data()
                        .into_builder()
                        .nulls(merged)
                        .build()
                        .map_err(|e| to_py(e.into()))?,
                );
            }
            Ok(Column {
                array,
                field: Arc::clone(&fields[index]),
            })
        }
        _ => Ok(Column { array, field }),
    }
}

/// Float vectors (validated by the core when read).
pub(crate) fn vectors(obj: &Bound<'_, PyAny>, name: Option<&str>) -> PyResult<Column> {
    column(obj, name, is_vector)
}

/// Code columns (fixed-size binary or lists).
pub(crate) fn codes(obj: &Bound<'_, PyAny>, name: Option<&str>) -> PyResult<Column> {
    column(obj, name, is_code)
}
