//! Row ids: the one rule every front end (CLI search, the SQL table function, the library's
//! corpus loader) applies to an id column.
//!
//! Any integer column is accepted (signed or unsigned, 8 to 64 bits) as long as every value
//! fits in `Int64`, the type of the ids in results; a NULL id or a `UInt64` above
//! `i64::MAX` is an error naming the row (never wrapped, never dropped); other types are
//! errors.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::Array;
use arrow_schema::DataType;

use crate::error::{Error, Result};

/// The ids of `array` as `i64` (see the module docs). Rows in errors count from
/// `first_row` (the row of `array`'s first value in its file or stream).
pub fn id_values(array: &dyn Array, first_row: u64) -> Result<Vec<i64>> {
    if let Some(r) = (0..array.len()).find(|&r| array.is_null(r)) {
        let r = first_row + r as u64;
        return Err(Error::NullRow { what: "id", row: r });
    }
    fn widen<T: arrow_array::ArrowPrimitiveType>(a: &dyn Array) -> Vec<i64>
    where
        T::Native: Into<i64>,
    {
        a.as_primitive::<T>()
            .values()
            .iter()
            .map(|&v| v.into())
            .collect()
    }
    Ok(match array.data_type() {
        DataType::Int8 => widen::<Int8Type>(array),
        DataType::Int16 => widen::<Int16Type>(array),
        DataType::Int32 => widen::<Int32Type>(array),
        DataType::Int64 => array.as_primitive::<Int64Type>().values().to_vec(),
        DataType::UInt8 => widen::<UInt8Type>(array),
        DataType::UInt16 => widen::<UInt16Type>(array),
        DataType::UInt32 => widen::<UInt32Type>(array),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().values();
            v.iter()
                .enumerate()
                .map(|(r, &x)| {
                    let r = first_row + r as u64;
                    i64::try_from(x).map_err(|_| Error::BadValue {
                        row: r,
                        problem: format!("the id {x} does not fit in Int64"),
                    })
                })
                .collect::<Result<_>>()?
        }
        other => {
            return Err(Error::Schema(format!(
                "the id column must hold integers, found {other}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use arrow_array::{Float32Array, Int16Array, Int64Array, UInt64Array};

    use super::*;

    #[test]
    fn integers_widen_and_nulls_overflow_and_other_types_are_errors() {
        assert_eq!(
            id_values(&Int16Array::from(vec![-3, 7]), 0).unwrap(),
            vec![-3, 7]
        );
        assert_eq!(
            id_values(&UInt64Array::from(vec![1, i64::MAX as u64]), 0).unwrap(),
            vec![1, i64::MAX]
        );
        let e = id_values(&UInt64Array::from(vec![1, u64::MAX]), 100).unwrap_err();
        assert!(e.to_string().contains("row 101"), "{e}");
        let e = id_values(&Int64Array::from(vec![Some(1), Some(2), None]), 0).unwrap_err();
        assert!(e.to_string().contains("row 2 is NULL"), "{e}");
        let e = id_values(&Float32Array::from(vec![1.0]), 0).unwrap_err();
        assert!(e.to_string().contains("integers"), "{e}");
    }
}
