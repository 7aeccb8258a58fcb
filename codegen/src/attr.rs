//! The attribute's arguments: `#[tall_skinny_net(batch = 4, scalar = f32)]`.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, Meta, Token};

use crate::errors::Errors;

/// The scalar type of the generated code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// `f32`
    F32,
    /// `f64` (the default)
    F64,
}

impl Scalar {
    /// `f32` or `f64`.
    pub fn name(self) -> &'static str {
        match self {
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
        }
    }
}

/// Parsed arguments, with the errors found while parsing them.
pub struct Args {
    /// Samples per batch, fixed at compile time (default 1).
    pub batch: usize,
    /// Scalar type (default `f64`).
    pub scalar: Scalar,
    /// Problems with the arguments, reported together with those of the struct.
    pub errors: Errors,
}

/// Parses the argument list; never fails outright, problems go to `Args::errors`.
pub fn parse_args(attr: TokenStream) -> Args {
    let mut args = Args { batch: 1, scalar: Scalar::F64, errors: Errors::default() };
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr) {
        Ok(metas) => metas,
        Err(err) => {
            args.errors.push(syn::Error::new(
                err.span(),
                format!(
                    "{err}; expected arguments like `#[tall_skinny_net(batch = 4, scalar = f64)]`"
                ),
            ));
            return args;
        }
    };
    let mut seen_batch: Option<Span> = None;
    let mut seen_scalar: Option<Span> = None;
    for meta in metas {
        let Meta::NameValue(nv) = &meta else {
            args.errors.spanned(
                &meta,
                "expected `name = value`, e.g. `batch = 4` or `scalar = f32`",
            );
            continue;
        };
        let name = nv.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        match name.as_str() {
            "batch" => {
                if seen_batch.is_some() {
                    args.errors.spanned(&nv.path, "duplicate argument `batch`; give it once");
                }
                seen_batch = Some(Span::call_site());
                match int_lit(&nv.value) {
                    Some(0) => args.errors.spanned(
                        &nv.value,
                        "`batch` must be at least 1 (it is the number of samples per call)",
                    ),
                    Some(b) => args.batch = b,
                    None => args.errors.spanned(
                        &nv.value,
                        "`batch` takes an integer literal, e.g. `batch = 8`",
                    ),
                }
            }
            "scalar" => {
                if seen_scalar.is_some() {
                    args.errors.spanned(&nv.path, "duplicate argument `scalar`; give it once");
                }
                seen_scalar = Some(Span::call_site());
                let ident = match &nv.value {
                    Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
                    _ => None,
                };
                match ident.as_deref() {
                    Some("f64") => args.scalar = Scalar::F64,
                    Some("f32") => args.scalar = Scalar::F32,
                    _ => args.errors.spanned(
                        &nv.value,
                        "`scalar` must be `f32` or `f64`",
                    ),
                }
            }
            _ => args.errors.spanned(
                &nv.path,
                format!(
                    "unknown argument `{}`; the arguments are `batch = N` and `scalar = f32 | f64`",
                    quote::ToTokens::to_token_stream(&nv.path)
                ),
            ),
        }
    }
    args
}

/// The value of an unsuffixed (or `usize`-suffixed) integer literal.
pub fn int_lit(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Int(lit), .. }) => lit.base10_parse().ok(),
        Expr::Group(g) => int_lit(&g.expr),
        Expr::Paren(p) => int_lit(&p.expr),
        _ => None,
    }
}
