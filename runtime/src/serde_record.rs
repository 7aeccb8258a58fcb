//! serde support for generated networks (feature `serde`): a net serializes as the struct
//! `NetRecord { architecture, fingerprint, scalar, params }` (the architecture description
//! and fingerprint of [`crate::record`], `"f32"` or `"f64"`, the flat parameter vector) and
//! deserializes only from one whose fingerprint is its own, with exactly `N_PARAMS` finite
//! parameters. Nothing allocates (the parameters stream in and out of the layers);
//! deserializing builds a new net, so a failure leaves no half-loaded one behind.
//!
//! For self-describing formats (JSON, ...), records of the `f64` and `f32` forms of an
//! architecture load into each other; binary formats need the same scalar.

use core::fmt;
use core::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::chain::{ChainMut, Params};
use crate::real::Real;
use crate::record::{RecordError, Scalar};

const FIELDS: &[&str] = &["architecture", "fingerprint", "scalar", "params"];

struct ParamSeq<'a, T, Ls> {
    layers: &'a Ls,
    n: usize,
    t: PhantomData<T>,
}

impl<T: Real + Serialize, Ls: Params<T>> Serialize for ParamSeq<'_, T, Ls> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.n))?;
        let mut err = None;
        self.layers.each_param(&mut |v: T| {
            if err.is_none() {
                if let Err(e) = seq.serialize_element(&v) {
                    err = Some(e);
                }
            }
        });
        match err {
            Some(e) => Err(e),
            None => seq.end(),
        }
    }
}

/// Serializes the parameters of `layers` as a `NetRecord`. Called by generated code.
pub fn serialize<T: Real + Serialize, Ls: Params<T>, S: Serializer>(
    layers: &Ls,
    architecture: &'static str,
    fingerprint: u64,
    n: usize,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut st = s.serialize_struct("NetRecord", 4)?;
    st.serialize_field("architecture", architecture)?;
    st.serialize_field("fingerprint", &fingerprint)?;
    st.serialize_field("scalar", Scalar::of::<T>().name())?;
    st.serialize_field(
        "params",
        &ParamSeq {
            layers,
            n,
            t: PhantomData,
        },
    )?;
    st.end()
}

/// A string read and dropped (no allocation).
struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AnyStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        d.deserialize_str(V)
    }
}

enum Field {
    Architecture,
    Fingerprint,
    Scalar,
    Params,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field of NetRecord")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "architecture" => Field::Architecture,
                    "fingerprint" => Field::Fingerprint,
                    "scalar" => Field::Scalar,
                    "params" => Field::Params,
                    _ => Field::Other,
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
                Ok(match v {
                    0 => Field::Architecture,
                    1 => Field::Fingerprint,
                    2 => Field::Scalar,
                    3 => Field::Params,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Streams exactly `n` finite parameters into the layers.
struct ParamsSeed<'a, T, Ls> {
    layers: &'a mut Ls,
    n: usize,
    t: PhantomData<T>,
}

impl<'de, T: Real + Deserialize<'de>, Ls: ChainMut<T>> DeserializeSeed<'de>
    for ParamsSeed<'_, T, Ls>
{
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Real + Deserialize<'de>, Ls: ChainMut<T>> Visitor<'de> for ParamsSeed<'_, T, Ls> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence of {} parameters", self.n)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let n = self.n;
        let mut index = 0;
        let mut err: Option<A::Error> = None;
        self.layers.fill_params(&mut || {
            if err.is_some() {
                return T::ZERO;
            }
            match seq.next_element::<T>() {
                Ok(Some(v)) if v.finite() => {
                    index += 1;
                    v
                }
                Ok(Some(_)) => {
                    err = Some(de::Error::custom(RecordError::NonFiniteParameter { index }));
                    T::ZERO
                }
                Ok(None) => {
                    err = Some(de::Error::invalid_length(index, &"N_PARAMS parameters"));
                    T::ZERO
                }
                Err(e) => {
                    err = Some(e);
                    T::ZERO
                }
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        debug_assert_eq!(index, n);
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(n + 1, &"N_PARAMS parameters"));
        }
        Ok(())
    }
}

struct RecordVisitor<T, Ls> {
    layers: Ls,
    fingerprint: u64,
    n: usize,
    t: PhantomData<T>,
}

impl<T, Ls> RecordVisitor<T, Ls> {
    fn check<E: de::Error>(&self, found: u64) -> Result<(), E> {
        if found == self.fingerprint {
            Ok(())
        } else {
            Err(E::custom(RecordError::ArchitectureMismatch {
                expected: self.fingerprint,
                found,
            }))
        }
    }
}

impl<'de, T: Real + Deserialize<'de>, Ls: ChainMut<T>> Visitor<'de> for RecordVisitor<T, Ls> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a NetRecord")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let missing = |k| de::Error::invalid_length(k, &"NetRecord's 4 fields");
        seq.next_element::<AnyStr>()?.ok_or_else(|| missing(0))?;
        let found: u64 = seq.next_element()?.ok_or_else(|| missing(1))?;
        self.check(found)?;
        seq.next_element::<AnyStr>()?.ok_or_else(|| missing(2))?;
        let seed = ParamsSeed {
            layers: &mut self.layers,
            n: self.n,
            t: PhantomData,
        };
        seq.next_element_seed(seed)?.ok_or_else(|| missing(3))?;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let (mut fingerprint, mut params) = (false, false);
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::Fingerprint => {
                    let found: u64 = map.next_value()?;
                    self.check(found)?;
                    fingerprint = true;
                }
                Field::Params => {
                    map.next_value_seed(ParamsSeed {
                        layers: &mut self.layers,
                        n: self.n,
                        t: PhantomData,
                    })?;
                    params = true;
                }
                Field::Architecture | Field::Scalar => {
                    map.next_value::<AnyStr>()?;
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !fingerprint {
            return Err(de::Error::missing_field("fingerprint"));
        }
        if !params {
            return Err(de::Error::missing_field("params"));
        }
        Ok(())
    }
}

/// Deserializes a `NetRecord` into `layers` (of a new net: on an error the caller drops
/// it). Called by generated code.
pub fn deserialize_into<'de, T: Real + Deserialize<'de>, Ls: ChainMut<T>, D: Deserializer<'de>>(
    layers: Ls,
    fingerprint: u64,
    n: usize,
    d: D,
) -> Result<(), D::Error> {
    d.deserialize_struct(
        "NetRecord",
        FIELDS,
        RecordVisitor {
            layers,
            fingerprint,
            n,
            t: PhantomData,
        },
    )
}

/// `Serialize` and `Deserialize` for a generated net (what generated code invokes; with the
/// `serde` feature off, the other definition of this macro expands to nothing).
#[doc(hidden)]
#[macro_export]
macro_rules! __serde_impls {
    ($net:ident, $t:ty, $n:expr, { $($bounds:tt)* }) => {
        impl $crate::__private::serde::Serialize for $net $($bounds)* {
            fn serialize<__S: $crate::__private::serde::Serializer>(&self, s: __S) -> ::core::result::Result<__S::Ok, __S::Error> {
                $crate::__private::serde_record::serialize::<$t, _, __S>(
                    &self.layers(), Self::ARCHITECTURE, Self::ARCH_FINGERPRINT, $n, s,
                )
            }
        }
        impl<'__de> $crate::__private::serde::Deserialize<'__de> for $net $($bounds)* {
            fn deserialize<__D: $crate::__private::serde::Deserializer<'__de>>(d: __D) -> ::core::result::Result<Self, __D::Error> {
                let mut net = Self::ZERO;
                $crate::__private::serde_record::deserialize_into::<$t, _, __D>(
                    net.layers_mut(), Self::ARCH_FINGERPRINT, $n, d,
                )?;
                ::core::result::Result::Ok(net)
            }
        }
    };
}
