//! Which columns of a corpus schema a tier chain reads ([`CodeLayout`]): the code column of
//! each coded tier (by its embquant recipe), the calibration they share, the Matryoshka
//! truncation and the float column, found from the schema alone.

use arrow_schema::{DataType, Schema};

use super::chain::{Tier, TierSpec};
use crate::calibration::Calibration;
use crate::codec::scheme::Scheme;
use crate::error::{Error, Result};
use crate::metadata::{ColumnRecipe, Truncation};

/// The scheme whose codes serve `tier` (None for the float tier; for multi-bit RaBitQ, the
/// sign column's: see [`columns_of`]).
pub fn scheme_of(tier: Tier) -> Option<Scheme> {
    match tier {
        Tier::Binary => Some(Scheme::Binary),
        Tier::Int8 => Some(Scheme::Int8),
        Tier::Int4 => Some(Scheme::Int4),
        Tier::F16 => Some(Scheme::F16),
        Tier::Rabitq(_) => Some(Scheme::Rabitq),
        Tier::Float => None,
    }
}

/// The code columns `tier` reads, as (scheme, RaBitQ bits of the extra-bits column or 0):
/// `rabitq4` reads the sign column and the 4-bit extra bits.
pub fn columns_of(tier: Tier) -> Vec<(Scheme, u8)> {
    match tier {
        Tier::Rabitq(b) if b.get() > 1 => vec![(Scheme::Rabitq, 0), (Scheme::RabitqEx, b.get())],
        t => scheme_of(t).map(|s| (s, 0)).into_iter().collect(),
    }
}

/// Whether `r` is the recipe of the column `key` names.
fn is_column(r: &ColumnRecipe, key: (Scheme, u8)) -> bool {
    r.scheme == key.0 && (key.0 != Scheme::RabitqEx || r.rabitq_bits == Some(key.1))
}

/// Checks that the extra bits `ex` (column name, recipe, fingerprint of the calibration
/// its field carries) and the sign column `sign` they are scored with come from one
/// encoding: the same rotation (kind, seed, rounds), dimensions, padded dimensions,
/// truncation and calibration, and that the extra bits name this sign column.
pub fn check_pair(
    ex: (&str, &ColumnRecipe, Option<String>),
    sign: (&str, &ColumnRecipe, Option<String>),
) -> Result<()> {
    use crate::codec::rabitq::Rotation;
    let ((ex_name, e, ex_cal), (sign_name, s, sign_cal)) = (ex, sign);
    let differ = |field: &'static str, found: String, expected: String| {
        Err(Error::RecipeMismatch {
            column: ex_name.to_string(),
            other: sign_name.to_string(),
            field,
            found,
            expected,
        })
    };
    let parts = |r: Option<Rotation>| match r {
        None => ("none", None),
        Some(Rotation::None) => ("none", None),
        Some(Rotation::Hadamard { rounds, seed }) => ("hadamard", Some((rounds, seed))),
    };
    let (ek, ep) = parts(e.rotation);
    let (sk, sp) = parts(s.rotation);
    if ek != sk {
        return differ("rotation.kind", ek.into(), sk.into());
    }
    if let (Some((er, es)), Some((sr, ss))) = (ep, sp) {
        if es != ss {
            return differ("rotation.seed", es.to_string(), ss.to_string());
        }
        if er != sr {
            return differ("rotation.rounds", er.to_string(), sr.to_string());
        }
    }
    if e.dims != s.dims {
        return differ("dims", e.dims.to_string(), s.dims.to_string());
    }
    let shown = |b: Option<usize>| b.map_or("none".to_string(), |b| b.to_string());
    if e.padded_bits() != s.padded_bits() || e.code_bits != s.code_bits {
        return differ(
            "code_bits",
            shown(e.code_bits.or(e.padded_bits())),
            shown(s.code_bits.or(s.padded_bits())),
        );
    }
    if e.truncation != s.truncation {
        return differ(
            "truncation",
            format!("{:?}", e.truncation),
            format!("{:?}", s.truncation),
        );
    }
    // The calibration each was made with: the recorded fingerprint, else the one its field
    // carries (a writer that knew neither cannot be checked).
    let (ef, sf) = (
        e.calibration_fingerprint.clone().or(ex_cal),
        s.calibration_fingerprint.clone().or(sign_cal),
    );
    if let (Some(ef), Some(sf)) = (ef, sf) {
        if ef != sf {
            return differ("calibration_fingerprint", ef, sf);
        }
    }
    if let Some(named) = e.sign_column.as_deref().filter(|n| *n != sign_name) {
        return differ(
            "sign_column",
            format!("{named:?}"),
            format!("{sign_name:?} (the sign column read)"),
        );
    }
    Ok(())
}

/// `rabitq`, or `rabitq_ex (4 bits)`.
fn column_label(key: (Scheme, u8)) -> String {
    match key {
        (Scheme::RabitqEx, b) => format!("rabitq{b} extra bits"),
        (s, _) => s.to_string(),
    }
}

/// Whether `dt` is a vector of floats (`FixedSizeList`, `List` or `LargeList`).
pub fn is_float_vector(dt: &DataType) -> bool {
    match dt {
        DataType::FixedSizeList(f, _) | DataType::List(f) | DataType::LargeList(f) => {
            matches!(
                f.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64
            )
        }
        _ => false,
    }
}

/// The float vector column `name` of `schema`; without a name (or when it is absent), the
/// one float vector column that is not an embquant code column.
pub fn float_column(schema: &Schema, name: Option<&str>) -> Option<usize> {
    name.and_then(|n| schema.index_of(n).ok())
        .filter(|&i| is_float_vector(schema.field(i).data_type()))
        .or_else(|| {
            let v: Vec<usize> = (0..schema.fields().len())
                .filter(|&i| {
                    let f = schema.field(i);
                    is_float_vector(f.data_type())
                        && !f.metadata().contains_key(crate::metadata::METADATA_KEY)
                })
                .collect();
            (v.len() == 1).then(|| v[0])
        })
}

/// Which columns of a corpus schema a chain reads.
#[derive(Debug, Clone)]
pub struct CodeLayout {
    /// The float column the codes were made from (None for a float-only chain whose float
    /// column was found by type).
    pub source: Option<String>,
    /// (index in the schema, recipe) of the code column of each coded tier, in chain order,
    /// each scheme once.
    pub codes: Vec<(usize, ColumnRecipe)>,
    /// The calibration the codes carry (None when no code column needs one).
    pub calibration: Option<Calibration>,
    /// The Matryoshka truncation the codes were made with: queries get the same.
    pub truncation: Option<Truncation>,
    /// The float vector column, when the chain has a float tier.
    pub float: Option<usize>,
}

impl CodeLayout {
    /// Finds the columns `chain` reads in `schema`. With `source`, the codes of that float
    /// column; without, of the one source column that has codes for every coded tier.
    pub fn from_schema(schema: &Schema, source: Option<&str>, chain: &[TierSpec]) -> Result<Self> {
        let mut found: Vec<(usize, ColumnRecipe, Option<Calibration>)> = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            if let Some((r, c)) = ColumnRecipe::from_field(f)? {
                found.push((i, r, c));
            }
        }
        let mut schemes: Vec<(Scheme, u8)> = Vec::new();
        for s in chain.iter().flat_map(|s| columns_of(s.tier)) {
            if !schemes.contains(&s) {
                schemes.push(s);
            }
        }
        let has_all = |src: &str| {
            schemes.iter().all(|s| {
                found
                    .iter()
                    .any(|(_, r, _)| r.source_column == src && is_column(r, *s))
            })
        };
        let source = match source {
            Some(s) => Some(s.to_string()),
            None => found
                .iter()
                .map(|(_, r, _)| r.source_column.clone())
                .find(|s| has_all(s)),
        };
        if !schemes.is_empty() && !source.as_deref().is_some_and(has_all) {
            let listed = if found.is_empty() {
                "none".to_string()
            } else {
                found
                    .iter()
                    .map(|(i, r, _)| {
                        format!(
                            "{} ({} of {:?})",
                            schema.field(*i).name(),
                            r.scheme,
                            r.source_column
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let missing: Vec<String> = schemes
                .iter()
                .filter(|s| {
                    !found.iter().any(|(_, r, _)| {
                        Some(&r.source_column) == source.as_ref() && is_column(r, **s)
                    })
                })
                .map(|s| column_label(*s))
                .collect();
            return Err(Error::Schema(format!(
                "the corpus has no code columns for the tiers {:?}{}: no {} codes (columns with embquant metadata: {listed}); \
                 quantize with `embquant quantize --scheme {}` or the quantize functions, and keep the Parquet metadata",
                chain
                    .iter()
                    .filter(|s| s.tier != Tier::Float)
                    .map(|s| s.tier.to_string())
                    .collect::<Vec<_>>(),
                source.as_deref().map(|s| format!(" of {s:?}")).unwrap_or_default(),
                missing.join(", "),
                chain
                    .iter()
                    .filter(|s| s.tier != Tier::Float)
                    .map(|s| s.tier.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )));
        }
        let mut codes = Vec::new();
        let mut calibration: Option<Calibration> = None;
        for s in &schemes {
            let (i, r, c) = found
                .iter()
                .find(|(_, r, _)| Some(&r.source_column) == source.as_ref() && is_column(r, *s))
                .cloned()
                .expect("checked above");
            if let Some(c) = c {
                if calibration
                    .as_ref()
                    .is_some_and(|p| p.fingerprint() != c.fingerprint())
                {
                    return Err(Error::CalibrationMismatch(
                        "the code columns carry different calibrations: codes are only comparable under one calibration".into(),
                    ));
                }
                calibration = Some(c);
            }
            codes.push((i, r));
        }
        // A column that recorded its calibration's fingerprint but carries no calibration is
        // decoded with the others': it must be the one it was made with.
        if let Some(cal) = &calibration {
            for (i, r) in &codes {
                if let Some(fp) = r.calibration_fingerprint.as_deref() {
                    if fp != cal.fingerprint() {
                        return Err(Error::CalibrationMismatch(format!(
                            "column {:?} was made with the calibration {fp}, the code columns carry {}: codes are only comparable under one calibration",
                            schema.field(*i).name(),
                            cal.fingerprint()
                        )));
                    }
                }
            }
        }
        // The extra bits of multi-bit RaBitQ are scored with the sign column's bits and
        // factors: both must come from one encoding.
        for (i, r) in codes.iter().filter(|(_, r)| r.scheme == Scheme::RabitqEx) {
            if let Some((j, s)) = codes.iter().find(|(_, s)| s.scheme == Scheme::Rabitq) {
                let carried = |k: usize| {
                    found
                        .iter()
                        .find(|(f, _, _)| *f == k)
                        .and_then(|(_, _, c)| c.as_ref())
                        .map(|c| c.fingerprint().to_string())
                };
                check_pair(
                    (schema.field(*i).name(), r, carried(*i)),
                    (schema.field(*j).name(), s, carried(*j)),
                )?;
            }
        }
        let truncation = codes.first().and_then(|(_, r)| r.truncation);
        let float = if chain.iter().any(|s| s.tier == Tier::Float) {
            let named = match &source {
                Some(s) => schema
                    .index_of(s)
                    .ok()
                    .filter(|&i| is_float_vector(schema.field(i).data_type())),
                None => float_column(schema, None),
            };
            Some(named.ok_or_else(|| {
                Error::Schema(format!(
                    "the float tier needs the corpus' float column{}, a vector column (quantized with --drop-source?)",
                    source.as_deref().map(|s| format!(" {s:?}")).unwrap_or_default()
                ))
            })?)
        } else {
            None
        };
        let source = source.or_else(|| float.map(|i| schema.field(i).name().clone()));
        Ok(CodeLayout {
            source,
            codes,
            calibration,
            truncation,
            float,
        })
    }

    /// Dimension of the codes (None for a float-only chain).
    pub fn dims(&self) -> Option<usize> {
        self.codes.first().map(|(_, r)| r.dims)
    }

    /// An error unless `other` (another file's layout) holds codes of the same recipes under
    /// the same calibration: codes are only comparable under one calibration.
    pub fn check_same(&self, other: &CodeLayout) -> Result<()> {
        let fp = |c: &Option<Calibration>| c.as_ref().map(|c| c.fingerprint().to_string());
        let same_recipes = self.codes.len() == other.codes.len()
            && self.codes.iter().zip(&other.codes).all(|((_, a), (_, b))| {
                a.scheme == b.scheme
                    && a.rabitq_bits == b.rabitq_bits
                    && a.dims == b.dims
                    && a.threshold == b.threshold
                    && a.rotation == b.rotation
                    && a.truncation == b.truncation
            });
        if fp(&self.calibration) != fp(&other.calibration) || !same_recipes {
            return Err(Error::CalibrationMismatch(format!(
                "quantized with another calibration or recipe (fingerprint {:?} vs {:?}): codes are only comparable under one calibration",
                fp(&other.calibration),
                fp(&self.calibration)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Array;
    use arrow_schema::Field;

    use super::*;
    use crate::codec::rabitq::Rotation;
    use crate::codec::tests::calibrate;
    use crate::metadata::METADATA_KEY;
    use crate::quantizer::{QuantizeOptions, Quantizer};
    use crate::testutil::vectors_array;

    /// The schema of 32-d vectors quantized to int8 and 4-bit RaBitQ (`emb_rq`, `emb_rq4`).
    fn schema() -> Schema {
        let v = vectors_array(20, 32, 4, 0.0);
        let s = Arc::new(Schema::new(vec![Field::new(
            "emb",
            v.data_type().clone(),
            true,
        )]));
        let mut o = QuantizeOptions::new("emb");
        o.schemes = vec![Scheme::Int8, Scheme::Rabitq];
        o.rabitq_bits = 4;
        Quantizer::try_new(s, calibrate(&v), o)
            .unwrap()
            .schema()
            .as_ref()
            .clone()
    }

    /// `schema` with the recipe of `column` edited by `edit`, or the column renamed.
    fn edited(
        schema: &Schema,
        column: &str,
        rename: Option<&str>,
        edit: impl Fn(&mut serde_json::Value),
    ) -> Schema {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                if f.name() != column {
                    return f.as_ref().clone();
                }
                let mut m = f.metadata().clone();
                let mut r: serde_json::Value = serde_json::from_str(&m[METADATA_KEY]).unwrap();
                edit(&mut r);
                m.insert(METADATA_KEY.into(), r.to_string());
                let f = f.as_ref().clone().with_metadata(m);
                match rename {
                    Some(n) => f.with_name(n),
                    None => f,
                }
            })
            .collect();
        Schema::new(fields)
    }

    fn layout(schema: &Schema) -> Result<CodeLayout> {
        CodeLayout::from_schema(
            schema,
            Some("emb"),
            &TierSpec::parse_chain("rabitq1:bound,rabitq4:bound,int8").unwrap(),
        )
    }

    /// The field, and the columns, a `RecipeMismatch` names.
    fn mismatch(e: Error) -> (&'static str, String, String) {
        match e {
            Error::RecipeMismatch {
                field,
                column,
                other,
                ..
            } => (field, column, other),
            e => panic!("expected RecipeMismatch, got {e}"),
        }
    }

    #[test]
    fn extra_bits_from_another_encoding_than_their_sign_column_are_refused() {
        let s = schema();
        layout(&s).unwrap();
        let seed = |r: &mut serde_json::Value| r["rotation"]["seed"] = 12345.into();
        let rounds = |r: &mut serde_json::Value| r["rotation"]["rounds"] = 5.into();
        // 32 dimensions: no rotation pads to the same 32 bits, only the kind differs.
        let none = |r: &mut serde_json::Value| r["rotation"] = serde_json::json!({"kind": "none"});
        type Edit<'a> = &'a dyn Fn(&mut serde_json::Value);
        let cases: [(&str, Edit<'_>, &str); 5] = [
            ("emb_rq4", &seed, "rotation.seed"),
            ("emb_rq", &seed, "rotation.seed"),
            ("emb_rq4", &rounds, "rotation.rounds"),
            ("emb_rq4", &none, "rotation.kind"),
            (
                "emb_rq4",
                &|r: &mut serde_json::Value| r["sign_column"] = "emb_other_rq".into(),
                "sign_column",
            ),
        ];
        for (column, edit, field) in cases {
            let e = layout(&edited(&s, column, None, edit)).unwrap_err();
            let text = e.to_string();
            assert_eq!(
                mismatch(e),
                (field, "emb_rq4".to_string(), "emb_rq".to_string()),
                "{column}: {text}"
            );
            assert!(
                text.contains("\"emb_rq4\"") && text.contains("\"emb_rq\"") && text.contains(field),
                "{text}"
            );
        }
        // A renamed sign column is not the one the extra bits name.
        let renamed = edited(&s, "emb_rq", Some("emb_signs"), |_| {});
        let (field, _, other) = mismatch(layout(&renamed).unwrap_err());
        assert_eq!((field, other.as_str()), ("sign_column", "emb_signs"));
    }

    #[test]
    fn pairs_compare_dims_padding_truncation_and_calibration() {
        let s = schema();
        let recipe = |name: &str| {
            ColumnRecipe::from_field(s.field_with_name(name).unwrap())
                .unwrap()
                .unwrap()
                .0
        };
        let (ex, sign) = (recipe("emb_rq4"), recipe("emb_rq"));
        let check = |e: &ColumnRecipe, s: &ColumnRecipe, ef: Option<&str>, sf: Option<&str>| {
            check_pair(
                ("emb_rq4", e, ef.map(String::from)),
                ("emb_rq", s, sf.map(String::from)),
            )
        };
        check(&ex, &sign, None, None).unwrap();
        let field = |r: Result<()>| mismatch(r.unwrap_err()).0;
        let mut e = ex.clone();
        e.dims = 30;
        assert_eq!(field(check(&e, &sign, None, None)), "dims");
        let mut e = ex.clone();
        e.code_bits = Some(64);
        assert_eq!(field(check(&e, &sign, None, None)), "code_bits");
        let mut e = ex.clone();
        e.truncation = Some(Truncation {
            dims: 32,
            normalized: true,
        });
        assert_eq!(field(check(&e, &sign, None, None)), "truncation");
        let mut e = ex.clone();
        e.calibration_fingerprint = Some("0000".into());
        assert_eq!(
            field(check(&e, &sign, None, None)),
            "calibration_fingerprint"
        );
        // Unrecorded, the fingerprint of the calibration the field carries counts.
        let (mut e, mut g) = (ex.clone(), sign.clone());
        e.calibration_fingerprint = None;
        g.calibration_fingerprint = None;
        check(&e, &g, Some("aa"), Some("aa")).unwrap();
        check(&e, &g, None, Some("aa")).unwrap();
        assert_eq!(
            field(check(&e, &g, Some("aa"), Some("bb"))),
            "calibration_fingerprint"
        );
        let mut g = sign.clone();
        g.rotation = Some(Rotation::Hadamard {
            rounds: 3,
            seed: 99,
        });
        assert_eq!(field(check(&ex, &g, None, None)), "rotation.seed");
    }

    #[test]
    fn a_column_recording_another_calibration_is_refused() {
        // The int8 column lost its calibration and records another one's fingerprint: it
        // would be decoded with the RaBitQ columns' calibration.
        let s = schema();
        let fields: Vec<Field> = s
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone();
                if f.name() != "emb_int8" {
                    return f;
                }
                let mut m = f.metadata().clone();
                m.remove(crate::metadata::CALIBRATION_KEY);
                let mut r: serde_json::Value = serde_json::from_str(&m[METADATA_KEY]).unwrap();
                r["calibration_fingerprint"] = "0000".into();
                m.insert(METADATA_KEY.into(), r.to_string());
                f.with_metadata(m)
            })
            .collect();
        let e = layout(&Schema::new(fields)).unwrap_err();
        assert!(
            matches!(e, Error::CalibrationMismatch(ref m) if m.contains("\"emb_int8\"")),
            "{e}"
        );
    }
}
