//! The attribute's arguments: `#[tall_skinny_net(batch = 4, scalar = f32)]`.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, Meta, Token};

use crate::errors::{did_you_mean, Errors};

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

/// The argument names, for "did you mean" hints.
const NAMES: &[&str] = &["batch", "scalar"];

const EXAMPLE: &str = "`#[tall_skinny_net(batch = 4, scalar = f32)]`";

const ARGS_HELP: &str =
    "`batch = N` (samples per call, default 1) and `scalar = f32 | f64` (default f64)";

/// Parses the argument list; never fails outright, problems go to `Args::errors`.
pub fn parse_args(attr: TokenStream) -> Args {
    let mut args = Args {
        batch: 1,
        scalar: Scalar::F64,
        errors: Errors::default(),
    };
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr) {
        Ok(metas) => metas,
        Err(err) => {
            args.errors.at(
                err.span(),
                format!(
                    "{err} in the arguments of #[tall_skinny_net]; write `name = value` pairs \
                     separated by commas, e.g. {EXAMPLE}"
                ),
            );
            return args;
        }
    };
    // The first value of each argument, as written, for the duplicate message.
    let mut seen_batch: Option<String> = None;
    let mut seen_scalar: Option<String> = None;
    for meta in metas {
        let path = meta.path();
        let name = path.get_ident().map(|i| i.to_string());
        let known = matches!(name.as_deref(), Some("batch" | "scalar"));
        let nv = match &meta {
            Meta::NameValue(nv) if known => nv,
            _ if !known => {
                let shown = path.to_token_stream().to_string().replace(' ', "");
                let value = match &meta {
                    Meta::NameValue(nv) => nv.value.to_token_stream().to_string(),
                    _ => String::new(),
                };
                let msg = match did_you_mean(&shown, NAMES) {
                    Some(meant) => {
                        let fix = if value.is_empty() {
                            example(meant).to_string()
                        } else {
                            format!("{meant} = {value}")
                        };
                        format!(
                            "unknown argument `{shown}`; write `{fix}` if that is what you \
                             meant; the arguments are {ARGS_HELP}"
                        )
                    }
                    None => format!(
                        "unknown argument `{shown}`; the arguments are {ARGS_HELP}, so write e.g. \
                         {EXAMPLE} or remove it"
                    ),
                };
                args.errors.spanned(path, msg);
                continue;
            }
            Meta::Path(p) => {
                let name = name.unwrap_or_default();
                args.errors.spanned(
                    p,
                    format!(
                        "argument `{name}` needs a value; write e.g. `{}`",
                        example(&name)
                    ),
                );
                continue;
            }
            Meta::List(l) => {
                let name = name.unwrap_or_default();
                args.errors.spanned(
                    l,
                    format!(
                        "arguments take the form `name = value`, not `{name}(..)`; write e.g. `{}`",
                        example(&name)
                    ),
                );
                continue;
            }
            Meta::NameValue(_) => unreachable!("handled above"),
        };
        let value_shown = nv.value.to_token_stream().to_string();
        match name.as_deref() {
            Some("batch") => {
                if let Some(first) = &seen_batch {
                    args.errors.spanned(
                        path,
                        format!(
                            "duplicate argument `batch` (already given as `batch = {first}`); \
                             give it once, e.g. `#[tall_skinny_net(batch = {first})]`"
                        ),
                    );
                } else {
                    seen_batch = Some(value_shown.clone());
                }
                match int_lit(&nv.value) {
                    Some(0) => args.errors.spanned(
                        &nv.value,
                        "`batch` must be at least 1 (it is the number of samples per call), \
                         found 0; write e.g. `batch = 1`",
                    ),
                    Some(b) => args.batch = b,
                    None => {
                        let fix = match string_lit(&nv.value) {
                            Some(s) if s.parse::<usize>().is_ok_and(|b| b > 0) => {
                                format!("write it without quotes: `batch = {s}`")
                            }
                            _ => "write e.g. `batch = 8`".to_string(),
                        };
                        args.errors.spanned(
                            &nv.value,
                            format!(
                                "`batch` takes a positive integer literal, found `{value_shown}`; \
                                 {fix}"
                            ),
                        )
                    }
                }
            }
            Some("scalar") => {
                if let Some(first) = &seen_scalar {
                    args.errors.spanned(
                        path,
                        format!(
                            "duplicate argument `scalar` (already given as `scalar = {first}`); \
                             give it once, e.g. `#[tall_skinny_net(scalar = {first})]`"
                        ),
                    );
                } else {
                    seen_scalar = Some(value_shown.clone());
                }
                let ident = match &nv.value {
                    Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
                    _ => None,
                };
                match ident.as_deref() {
                    Some("f64") => args.scalar = Scalar::F64,
                    Some("f32") => args.scalar = Scalar::F32,
                    _ => {
                        let fix = match string_lit(&nv.value) {
                            Some(s) if s == "f32" || s == "f64" => {
                                format!("write it without quotes: `scalar = {s}`")
                            }
                            _ => "write `scalar = f32` or `scalar = f64`".to_string(),
                        };
                        args.errors.spanned(
                            &nv.value,
                            format!(
                                "`scalar` must be `f32` or `f64`, found `{value_shown}`; {fix}"
                            ),
                        )
                    }
                }
            }
            _ => unreachable!("unknown names handled above"),
        }
    }
    args
}

fn example(name: &str) -> &'static str {
    match name {
        "scalar" => "scalar = f32",
        _ => "batch = 4",
    }
}

fn string_lit(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.value()),
        _ => None,
    }
}

/// The value of an unsuffixed (or `usize`-suffixed) integer literal.
pub fn int_lit(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(lit), ..
        }) if matches!(lit.suffix(), "" | "usize") => lit.base10_parse().ok(),
        Expr::Group(g) => int_lit(&g.expr),
        Expr::Paren(p) => int_lit(&p.expr),
        _ => None,
    }
}
