//! Saving and loading: the architecture description and fingerprint, `RECORD_BYTES`, and
//! `to_bytes` / `from_bytes` / `load_bytes`, each a call into the runtime's `record` module
//! (which holds the format and every check), plus the runtime's `Record` trait.

use proc_macro2::TokenStream;
use quote::quote;

use super::{lit, Ctx};
use crate::net::ast::{Act, LayerField, LayerKind, LossKind, Net};
use crate::net::attr::Scalar;

/// The last segment of a path (`acts::Softsign` -> `Softsign`).
fn last_segment(path: &syn::Path) -> String {
    path.segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default()
}

/// One stage of `f` as the architecture description names it.
fn stage_desc(f: &LayerField) -> String {
    let act = match &f.act {
        Act::Builtin(name) => name.to_string(),
        Act::Custom(path) => last_segment(path),
    };
    match f.kind {
        LayerKind::Residual => format!("Residual<{}, {act}>", f.inputs.value),
        k => format!(
            "{}<{}, {}, {act}>",
            k.name(),
            f.inputs.value,
            f.outputs.value
        ),
    }
}

/// The description the architecture fingerprint is computed from: the stages in order
/// (consecutive identical stages run-length coded, so an array and the same layers
/// declared one by one agree), then the loss. Neither the batch, the scalar nor the field
/// names enter it. Custom activations and losses are named by their type's last path
/// segment.
pub(crate) fn architecture(net: &Net) -> String {
    let mut runs: Vec<(String, usize)> = Vec::new();
    for f in &net.layers {
        let one = stage_desc(f);
        match runs.last_mut() {
            Some((last, n)) if *last == one => *n += f.count(),
            _ => runs.push((one, f.count())),
        }
    }
    let mut parts: Vec<String> = runs
        .into_iter()
        .map(|(d, n)| if n == 1 { d } else { format!("[{d}; {n}]") })
        .collect();
    let w = net.loss.width.value;
    parts.push(match (&net.loss.kind, &net.loss.custom) {
        (LossKind::Custom, Some(path)) => format!("{}<{w}>", last_segment(path)),
        (kind, _) => format!("{}<{w}>", kind.name()),
    });
    parts.join(" -> ")
}

pub(crate) fn record_impl(cx: &Ctx) -> TokenStream {
    let (pv, t, net) = (&cx.pv, &cx.t, cx.net);
    let ident = &net.ident;
    let bounds = &cx.bounds;
    let n = lit(net.n_params());
    let scalar_bytes = lit(match net.scalar {
        Scalar::F32 => 4,
        Scalar::F64 => 8,
    });
    let arch = architecture(net);
    let r = quote!(::core::result::Result);
    let err = quote!(#pv::RecordError);
    let arch_doc = format!(
        " The architecture this net's records name (layer kinds, widths, activations, \
         loss; no batch, no scalar): `{arch}`."
    );
    let bytes_doc = format!(
        " The length of this net's byte records: 40 + {} x {} bytes (see `to_bytes`).",
        net.n_params(),
        match net.scalar {
            Scalar::F32 => 4,
            Scalar::F64 => 8,
        }
    );
    quote! {
        impl #ident #bounds {
            #[doc = #arch_doc]
            pub const ARCHITECTURE: &'static str = #arch;
            /// The fingerprint of [`Self::ARCHITECTURE`], computed at compile time: a record
            /// loads only into a net with the same one.
            pub const ARCH_FINGERPRINT: u64 = #pv::architecture_fingerprint(Self::ARCHITECTURE);
            #[doc = #bytes_doc]
            pub const RECORD_BYTES: usize = #pv::record_bytes(#n, #scalar_bytes);

            /// Writes the checked byte record of the parameters (magic, version, scalar,
            /// architecture fingerprint, count, little-endian parameters, checksum; the
            /// format is in the runtime's `record` module) to the front of `out`, which must
            /// hold at least [`Self::RECORD_BYTES`]; returns the length written.
            pub fn to_bytes(&self, out: &mut [u8]) -> #r<usize, #err> {
                #pv::write_record(&self.layers(), Self::ARCH_FINGERPRINT, #n, out)
            }

            /// Sets the parameters from a byte record written by a net of the same
            /// architecture (any batch; an `f32` or `f64` record), after checking all of
            /// it. On an error the net is unchanged.
            pub fn load_bytes(&mut self, bytes: &[u8]) -> #r<(), #err> {
                #pv::read_record::<#t, _>(self.layers_mut(), Self::ARCH_FINGERPRINT, #n, bytes)
            }

            /// A net with the parameters of a byte record (see [`Self::load_bytes`]).
            pub fn from_bytes(bytes: &[u8]) -> #r<Self, #err> {
                let mut net = Self::ZERO;
                net.load_bytes(bytes)?;
                #r::Ok(net)
            }
        }

        impl #pv::Record for #ident #bounds {
            type Scalar = #t;
            const ARCHITECTURE: &'static str = #ident::ARCHITECTURE;
            const ARCH_FINGERPRINT: u64 = #ident::ARCH_FINGERPRINT;
            const RECORD_BYTES: usize = #ident::RECORD_BYTES;
            fn to_bytes(&self, out: &mut [u8]) -> #r<usize, #err> {
                #ident::to_bytes(self, out)
            }
            fn load_bytes(&mut self, bytes: &[u8]) -> #r<(), #err> {
                #ident::load_bytes(self, bytes)
            }
        }

        // `Serialize` / `Deserialize` with the runtime's `serde` feature; nothing without.
        #pv::serde_impls! { #ident, #t, #n, { #bounds } }
    }
}
