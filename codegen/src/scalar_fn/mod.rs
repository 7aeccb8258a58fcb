//! `#[activation]` and `#[loss]`: a scalar function becomes a type whose value, first and
//! second derivatives are differentiated from the function's body at compile time
//! ([`symbolic`]) and emitted as plain Rust, generic over the runtime's `Real`.
//!
//! ```text
//! #[activation] fn softsign(x: f64) -> f64 { x / (1.0 + x.abs()) }
//!   -> the fn, unchanged
//!   -> pub struct Softsign;                      (impl runtime::Activation)
//! #[loss] fn huber(y: f64, t: f64) -> f64 { .. }
//!   -> the fn, unchanged
//!   -> pub struct Huber<const O: usize>;         (impl runtime::ElementwiseLoss and runtime::Loss)
//! ```
//!
//! The type's name is the function's name in UpperCamelCase (`scaled_tanh` -> `ScaledTanh`).

pub mod symbolic;

use std::collections::HashMap;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, ToTokens};
use syn::spanned::Spanned;
use syn::{BinOp, Expr, FnArg, Lit, Pat, ReturnType, Stmt, Type, UnOp};

use self::symbolic::{emit_body, piece_count, Cmp, EmitCx, Func, Graph, Id};
use crate::errors::Errors;

/// The most straight-line blocks (combinations of branches) one function may expand to.
pub const MAX_PIECES: usize = 64;

/// What the body of an `#[activation]` or `#[loss]` function may contain.
pub const SUPPORTED: &str = "supported: float literals and named constants, the argument(s), \
`let` bindings, `+ - * /`, unary `-`, `powi(n)` with an integer literal, `powf(c)` with a \
constant exponent, `exp`, `ln`, `sqrt`, `tanh`, `sinh`, `cosh`, `sin`, `cos`, `atan`, `abs` \
(as methods, `x.exp()`, or as `f64::exp(x)`), `max`/`min` against a constant, `as f64` / `as f32`, \
and `if`/`else` on a comparison (`<`, `<=`, `>`, `>=`, `==`, `!=`)";

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Activation,
    Loss,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Activation => "#[activation]",
            Kind::Loss => "#[loss]",
        }
    }
    fn arity(self) -> usize {
        match self {
            Kind::Activation => 1,
            Kind::Loss => 2,
        }
    }
    fn example(self) -> &'static str {
        match self {
            Kind::Activation => "`fn softsign(x: f64) -> f64 { x / (1.0 + x.abs()) }`",
            Kind::Loss => "`fn huber(y: f64, t: f64) -> f64 { .. }`",
        }
    }
}

/// Expands `#[activation] fn name(x: f64) -> f64 { .. }`: the function unchanged, plus a unit
/// struct `Name` implementing `::tall_skinny::runtime::Activation`.
pub fn expand_activation(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand(Kind::Activation, attr, item)
}

/// Expands `#[loss] fn name(y: f64, t: f64) -> f64 { .. }`: the function unchanged, plus a
/// struct `Name<const O: usize>` implementing `ElementwiseLoss` and `Loss`.
pub fn expand_loss(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    expand(Kind::Loss, attr, item)
}

/// [`expand_activation`], or on error the errors plus the function unchanged and a stand-in
/// type (implementing the trait with dummy bodies) so that nothing else reports a cascade.
pub fn expand_activation_or_error(attr: TokenStream, item: TokenStream) -> TokenStream {
    or_error(Kind::Activation, attr, item)
}

/// [`expand_loss`], or on error the errors plus the function and a stand-in type.
pub fn expand_loss_or_error(attr: TokenStream, item: TokenStream) -> TokenStream {
    or_error(Kind::Loss, attr, item)
}

fn or_error(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(kind, attr, item.clone()) {
        Ok(t) => t,
        Err(e) => {
            let mut out = e.to_compile_error();
            if let Ok(f) = syn::parse2::<syn::ItemFn>(item.clone()) {
                out.extend(quote!(#f));
                let ty = type_name(&f.sig.ident);
                if ty != f.sig.ident.to_string().trim_start_matches("r#") {
                    let ty = Ident::new(&ty, f.sig.ident.span());
                    out.extend(stub(kind, &f.vis, &ty));
                }
            } else {
                out.extend(item);
            }
            out
        }
    }
}

/// A stand-in type after an error (the build fails anyway; this only keeps later uses of the
/// type from adding errors of their own).
fn stub(kind: Kind, vis: &syn::Visibility, ty: &Ident) -> TokenStream {
    let rt = crate::runtime_path();
    let name = ty.to_string();
    match kind {
        Kind::Activation => quote! {
            #[derive(Clone, Copy, Debug, Default)]
            #vis struct #ty;
            impl #rt::Activation for #ty {
                const NAME: &'static str = #name;
                fn value<T: #rt::Real>(x: T) -> T { x }
                fn d1<T: #rt::Real>(x: T) -> (T, T) { (x, x) }
                fn d2<T: #rt::Real>(x: T) -> (T, T, T) { (x, x, x) }
            }
        },
        Kind::Loss => quote! {
            #[derive(Clone, Copy, Debug, Default)]
            #vis struct #ty<const O: usize>;
            impl<const O: usize> #rt::ElementwiseLoss for #ty<O> {
                const NAME: &'static str = #name;
                fn value<T: #rt::Real>(y: T, _t: T) -> T { y }
                fn d1<T: #rt::Real>(y: T, _t: T) -> (T, T) { (y, y) }
                fn d2<T: #rt::Real>(y: T, _t: T) -> (T, T, T) { (y, y, y) }
            }
            impl<T: #rt::Real, const O: usize, const B: usize> #rt::Loss<T, O, B> for #ty<O> {
                type Target = [[T; O]; B];
                fn check(t: &Self::Target) -> ::core::result::Result<(), #rt::NetError> { #rt::elementwise::check(t) }
                fn value(u: &#rt::nalgebra::SMatrix<T, O, B>, t: &Self::Target) -> T { #rt::elementwise::value::<Self, T, O, B>(u, t) }
                fn gradient(u: &#rt::nalgebra::SMatrix<T, O, B>, t: &Self::Target) -> (T, #rt::nalgebra::SMatrix<T, O, B>) { #rt::elementwise::gradient::<Self, T, O, B>(u, t) }
                fn hess_apply(u: &#rt::nalgebra::SMatrix<T, O, B>, t: &Self::Target, y: &#rt::nalgebra::SMatrix<T, O, B>) -> #rt::nalgebra::SMatrix<T, O, B> { #rt::elementwise::hess_apply::<Self, T, O, B>(u, t, y) }
                fn hess_block(u: &#rt::nalgebra::SMatrix<T, O, B>, t: &Self::Target, n: usize) -> #rt::nalgebra::SMatrix<T, O, O> { #rt::elementwise::hess_block::<Self, T, O, B>(u, t, n) }
            }
        },
    }
}

/// `softsign` -> `Softsign`, `scaled_tanh` -> `ScaledTanh`, `rat_2_3` -> `Rat2_3`
/// (an underscore between digits is kept).
pub fn type_name(f: &Ident) -> String {
    let s = f.to_string();
    let s = s.strip_prefix("r#").unwrap_or(&s);
    let mut out = String::new();
    let mut upper = true;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            let digits = i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if digits {
                out.push('_');
            }
            upper = true;
            continue;
        }
        if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The parsed signature: argument names and the float type written.
struct Sig {
    args: Vec<Ident>,
}

fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    if !attr.is_empty() {
        errors.spanned(
            &attr,
            format!(
                "{} takes no arguments; the type's name is the function's in UpperCamelCase \
                 (`fn scaled_tanh` makes `ScaledTanh`), so rename the function to rename the type",
                kind.attr()
            ),
        );
    }
    let f: syn::ItemFn = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(f)) => f,
        Ok(other) => {
            errors.spanned(
                first_tokens(&other),
                format!(
                    "{} goes on a function of {} float argument{}, e.g. {}",
                    kind.attr(),
                    if kind.arity() == 1 { "one" } else { "two" },
                    if kind.arity() == 1 { "" } else { "s" },
                    kind.example()
                ),
            );
            return Err(errors.finish().unwrap_err());
        }
        Err(e) => {
            errors.push(e);
            return Err(errors.finish().unwrap_err());
        }
    };
    let sig = signature(kind, &f, &mut errors);
    let ty_name = type_name(&f.sig.ident);
    if ty_name == f.sig.ident.to_string().trim_start_matches("r#") {
        errors.spanned(
            &f.sig.ident,
            format!(
                "{} names its type after the function in UpperCamelCase, which here is the \
                 function's own name `{ty_name}`; write the function in snake_case, e.g. `fn {}`",
                kind.attr(),
                snake(&ty_name)
            ),
        );
    }
    let mut g = Graph::new();
    let mut names = HashMap::new();
    let root = match &sig {
        Some(sig) => {
            let mut l = Lower {
                g: &mut g,
                errors: &mut errors,
                fn_name: &f.sig.ident,
                kind,
                names: &mut names,
                listed: false,
            };
            let mut scopes: Vec<(String, Bound)> = sig
                .args
                .iter()
                .enumerate()
                .map(|(k, a)| (a.to_string(), Arg(k)))
                .collect();
            let root = l.block(&f.block, &mut scopes);
            Some(root)
        }
        None => None,
    };
    if let Some(root) = root {
        let d1 = g.diff(root, 0);
        let d2 = g.diff(d1, 0);
        if piece_count(&mut g, &[root, d1, d2], MAX_PIECES) > MAX_PIECES {
            errors.spanned(
                &f.sig.ident,
                format!(
                    "{} `{}` has more than {MAX_PIECES} combinations of branches (each \
                     independent `if` or `max`/`min` doubles them, and every combination is \
                     written out); nest the conditions as an `if`/`else if` chain instead",
                    kind.attr(),
                    f.sig.ident
                ),
            );
        }
    }
    errors.finish()?;
    let (sig, root) = (sig.expect("checked"), root.expect("checked"));
    Ok(generate(kind, &f, &sig, g, names, root, &ty_name))
}

/// The leading tokens of an item, for an error span (`struct Foo`, `impl`, ...).
fn first_tokens(item: &syn::Item) -> TokenStream {
    item.to_token_stream().into_iter().take(2).collect()
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn float_name(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("f64") => Some("f64"),
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("f32") => Some("f32"),
        Type::Group(g) => float_name(&g.elem),
        Type::Paren(p) => float_name(&p.elem),
        _ => None,
    }
}

fn signature(kind: Kind, f: &syn::ItemFn, errors: &mut Errors) -> Option<Sig> {
    let s = &f.sig;
    let before = errors.len();
    let attr = kind.attr();
    let example = kind.example();
    if let Some(t) = &s.asyncness {
        errors.spanned(
            t,
            format!("{attr} cannot be `async`: write a plain function, e.g. {example}"),
        );
    }
    if let Some(t) = &s.unsafety {
        errors.spanned(
            t,
            format!("{attr} cannot be `unsafe`: its body is plain arithmetic; remove `unsafe`"),
        );
    }
    if let Some(abi) = &s.abi {
        errors.spanned(
            abi,
            format!(
                "{attr} cannot have an `extern` ABI; remove `{}`",
                crate::net::ast::tidy(abi)
            ),
        );
    }
    if !s.generics.params.is_empty() || s.generics.where_clause.is_some() {
        errors.spanned(
            &s.generics,
            format!(
                "{attr} cannot be generic: write it for `f64` (or `f32`); the generated type works \
                 for both scalars anyway, e.g. {example}"
            ),
        );
    }
    if let Some(v) = &s.variadic {
        errors.spanned(v, format!("{attr} cannot be variadic"));
    }
    let mut args = Vec::new();
    let mut float: Option<(&'static str, Span)> = None;
    for input in &s.inputs {
        match input {
            FnArg::Receiver(r) => errors.spanned(
                r,
                format!(
                    "{attr} goes on a free function, not a method; remove `self`, e.g. {example}"
                ),
            ),
            FnArg::Typed(pt) => {
                match float_name(&pt.ty) {
                    Some(name) => match float {
                        Some((prev, _)) if prev != name => errors.spanned(
                            &pt.ty,
                            format!(
                                "all arguments of {attr} have the same float type; write `{prev}`"
                            ),
                        ),
                        _ => float = Some((name, pt.ty.span())),
                    },
                    None => errors.spanned(
                        &pt.ty,
                        format!(
                            "{attr} takes `f64` (or `f32`) arguments, found `{}`; e.g. {example}",
                            crate::net::ast::tidy(&pt.ty)
                        ),
                    ),
                }
                match &*pt.pat {
                    Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                        args.push(pi.ident.clone())
                    }
                    other => errors.spanned(
                        other,
                        format!("name the argument, e.g. `x: f64`; {attr} needs a plain name here"),
                    ),
                }
            }
        }
    }
    if s.inputs.len() != kind.arity() {
        let span: TokenStream = if s.inputs.is_empty() {
            let p = s.paren_token.span.join();
            quote::quote_spanned!(p=> ())
        } else {
            s.inputs.to_token_stream()
        };
        let what = match kind {
            Kind::Activation => "an activation is a function of one argument, applied to each \
                                  pre-activation"
                .to_string(),
            Kind::Loss => "a loss takes an output `y` and its target `t`, and is differentiated \
                           with respect to `y`"
                .to_string(),
        };
        errors.spanned(
            span,
            format!(
                "{attr} takes {} argument{}, found {}: {what}; e.g. {example}",
                kind.arity(),
                if kind.arity() == 1 { "" } else { "s" },
                s.inputs.len()
            ),
        );
    }
    match &s.output {
        ReturnType::Default => errors.spanned(
            &s.ident,
            format!(
                "{attr} returns a float; add `-> {}`",
                float.map_or("f64", |f| f.0)
            ),
        ),
        ReturnType::Type(_, ty) => match (float_name(ty), float) {
            (Some(r), Some((a, _))) if r != a => errors.spanned(
                ty,
                format!(
                    "{attr} returns the type of its argument{}; write `-> {a}`",
                    if kind.arity() == 1 { "" } else { "s" }
                ),
            ),
            (Some(_), _) => {}
            (None, _) => errors.spanned(
                ty,
                format!(
                    "{attr} returns `f64` (or `f32`), found `{}`; e.g. {example}",
                    crate::net::ast::tidy(ty)
                ),
            ),
        },
    }
    (errors.len() == before).then_some(Sig { args })
}

/// A name in scope: an argument or a `let` binding.
#[derive(Clone, Copy)]
enum Bound {
    Arg(usize),
    Node(Id),
}
use Bound::Arg;

struct Lower<'a> {
    g: &'a mut Graph,
    errors: &'a mut Errors,
    fn_name: &'a Ident,
    kind: Kind,
    names: &'a mut HashMap<Id, String>,
    /// Whether an error of this function has listed the supported constructs.
    listed: bool,
}

impl Lower<'_> {
    /// Records that `what` (at `tokens`) cannot be differentiated. The first such error of
    /// the function lists what can be ([`SUPPORTED`]); the others refer to it, so a body with
    /// several unsupported constructs gets every one reported, each on its own tokens, and
    /// the list once.
    fn unsupported(&mut self, tokens: impl ToTokens, what: String) -> Id {
        let (attr, name) = (self.kind.attr(), self.fn_name);
        let msg = if self.listed {
            format!(
                "{what} in {attr} `{name}`: this cannot be differentiated symbolically either; \
                 rewrite it with the constructs listed at the first error of `{name}`"
            )
        } else {
            self.listed = true;
            format!(
                "{what} in {attr} `{name}`: the body is differentiated symbolically at compile \
                 time, and only some constructs can be; {SUPPORTED}"
            )
        };
        self.errors.spanned(tokens, msg);
        self.g.constant(0.0)
    }

    fn block(&mut self, b: &syn::Block, scopes: &mut Vec<(String, Bound)>) -> Id {
        let depth = scopes.len();
        let mut tail = None;
        let n = b.stmts.len();
        for (i, stmt) in b.stmts.iter().enumerate() {
            match stmt {
                Stmt::Local(local) => {
                    if let Some(init) = &local.init {
                        if let Some((_, diverge)) = &init.diverge {
                            self.unsupported(diverge, "`let ... else`".into());
                        }
                    }
                    let name = match &local.pat {
                        Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                            Some(&pi.ident)
                        }
                        Pat::Type(pt) => match &*pt.pat {
                            Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                                Some(&pi.ident)
                            }
                            _ => None,
                        },
                        _ => None,
                    };
                    let Some(name) = name else {
                        self.unsupported(
                            &local.pat,
                            format!(
                                "the pattern `{}` (bind one name: `let y = ...;`)",
                                crate::net::ast::tidy(&local.pat)
                            ),
                        );
                        continue;
                    };
                    let Some(init) = &local.init else {
                        self.unsupported(
                            local,
                            format!("`let {name};` without a value (write `let {name} = ...;`)"),
                        );
                        continue;
                    };
                    let v = self.expr(&init.expr, scopes);
                    self.names
                        .entry(v)
                        .or_insert_with(|| name.to_string().trim_start_matches("r#").to_string());
                    scopes.push((name.to_string(), Bound::Node(v)));
                }
                Stmt::Expr(e, None) if i + 1 == n => tail = Some(self.expr(e, scopes)),
                Stmt::Expr(Expr::Return(r), _) => {
                    self.unsupported(r, "`return`".into());
                }
                Stmt::Expr(e, _) => {
                    self.unsupported(
                        e,
                        format!(
                            "the statement `{}` (only `let` bindings and a final expression)",
                            short(e)
                        ),
                    );
                }
                Stmt::Item(item) => {
                    self.unsupported(first_tokens(item), "an item inside the body".into());
                }
                Stmt::Macro(m) => {
                    self.unsupported(
                        &m.mac,
                        format!("the macro `{}!`", crate::net::ast::tidy(&m.mac.path)),
                    );
                }
            }
        }
        scopes.truncate(depth);
        match tail {
            Some(t) => t,
            None => {
                self.errors.at(
                    b.brace_token.span.close(),
                    format!(
                        "the body of {} `{}` must end in the value (an expression without `;`)",
                        self.kind.attr(),
                        self.fn_name
                    ),
                );
                self.g.constant(0.0)
            }
        }
    }

    fn lookup(&mut self, name: &str, scopes: &[(String, Bound)]) -> Option<Id> {
        scopes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, b)| match *b {
                Bound::Arg(k) => self.g.arg(k),
                Bound::Node(id) => id,
            })
    }

    fn expr(&mut self, e: &Expr, scopes: &mut Vec<(String, Bound)>) -> Id {
        match e {
            Expr::Lit(l) => match &l.lit {
                Lit::Float(f) => match f.base10_parse::<f64>() {
                    Ok(v) if v.is_finite() => self.g.constant(v),
                    _ => self.unsupported(f, "a float literal that is not finite".into()),
                },
                Lit::Int(i) => match i.base10_parse::<f64>() {
                    Ok(v) if v.is_finite() => self.g.constant(v),
                    _ => self.unsupported(i, "this integer literal".into()),
                },
                other => self.unsupported(
                    other,
                    format!("the literal `{}`", crate::net::ast::tidy(other)),
                ),
            },
            Expr::Path(p) if p.qself.is_none() => {
                if let Some(id) = p.path.get_ident() {
                    if let Some(v) = self.lookup(&id.to_string(), scopes) {
                        return v;
                    }
                }
                // A named constant of the user's scope (`SCALE`, `core::f64::consts::PI`).
                self.g.named(p.to_token_stream())
            }
            Expr::Paren(p) => self.expr(&p.expr, scopes),
            Expr::Group(g) => self.expr(&g.expr, scopes),
            Expr::Block(b) if b.label.is_none() => self.block(&b.block, scopes),
            Expr::Unary(u) => match u.op {
                UnOp::Neg(_) => {
                    let a = self.expr(&u.expr, scopes);
                    self.g.neg(a)
                }
                _ => self.unsupported(
                    u.op,
                    format!("the operator `{}`", crate::net::ast::tidy(&u.op)),
                ),
            },
            Expr::Binary(b) => {
                let op = match b.op {
                    BinOp::Add(_) => 0,
                    BinOp::Sub(_) => 1,
                    BinOp::Mul(_) => 2,
                    BinOp::Div(_) => 3,
                    BinOp::Lt(_)
                    | BinOp::Le(_)
                    | BinOp::Gt(_)
                    | BinOp::Ge(_)
                    | BinOp::Eq(_)
                    | BinOp::Ne(_) => {
                        return self
                            .unsupported(b, "a comparison outside an `if` condition".into());
                    }
                    _ => {
                        return self.unsupported(
                            b.op,
                            format!("the operator `{}`", crate::net::ast::tidy(&b.op)),
                        )
                    }
                };
                let l = self.expr(&b.left, scopes);
                let r = self.expr(&b.right, scopes);
                match op {
                    0 => self.g.add(l, r),
                    1 => self.g.sub(l, r),
                    2 => self.g.mul(l, r),
                    _ => self.g.div(l, r),
                }
            }
            Expr::MethodCall(m) => {
                if let Some(t) = &m.turbofish {
                    return self.unsupported(t, "a turbofish".into());
                }
                let recv = self.expr(&m.receiver, scopes);
                let args: Vec<&Expr> = m.args.iter().collect();
                self.call(&m.method, recv, &args, m, scopes)
            }
            Expr::Call(c) => {
                let Expr::Path(p) = &*c.func else {
                    return self.unsupported(&c.func, "a call of a computed function".into());
                };
                let segs: Vec<String> = p
                    .path
                    .segments
                    .iter()
                    .map(|s| s.ident.to_string())
                    .collect();
                if segs.last().map(String::as_str) == Some(self.fn_name.to_string().as_str()) {
                    let supported = if self.listed {
                        String::new()
                    } else {
                        self.listed = true;
                        format!(" ({SUPPORTED})")
                    };
                    self.errors.spanned(
                        c,
                        format!(
                            "`{}` calls itself: {} cannot differentiate recursion at compile \
                             time; write the function without calling itself{supported}",
                            self.fn_name,
                            self.kind.attr()
                        ),
                    );
                    return self.g.constant(0.0);
                }
                if segs.len() == 2 && (segs[0] == "f64" || segs[0] == "f32") && !c.args.is_empty() {
                    let method = &p.path.segments[1].ident;
                    let recv = self.expr(&c.args[0], scopes);
                    let rest: Vec<&Expr> = c.args.iter().skip(1).collect();
                    return self.call(method, recv, &rest, c, scopes);
                }
                self.unsupported(
                    &c.func,
                    format!(
                        "the call of `{}` (other functions are not differentiated; inline its body, or make it an `#[activation]` of its own)",
                        crate::net::ast::tidy(&c.func)
                    ),
                )
            }
            Expr::If(i) => self.if_expr(i, scopes),
            Expr::Macro(m) => self.unsupported(
                &m.mac,
                format!("the macro `{}!`", crate::net::ast::tidy(&m.mac.path)),
            ),
            Expr::Closure(c) => self.unsupported(c.or1_token, "a closure".into()),
            Expr::ForLoop(l) => self.unsupported(l.for_token, "a `for` loop".into()),
            Expr::While(l) => self.unsupported(l.while_token, "a `while` loop".into()),
            Expr::Loop(l) => self.unsupported(l.loop_token, "a `loop`".into()),
            Expr::Match(m) => self.unsupported(
                m.match_token,
                "a `match` (write `if`/`else` on a comparison)".into(),
            ),
            Expr::Return(r) => self.unsupported(r, "`return`".into()),
            Expr::Assign(a) => self.unsupported(a, "an assignment".into()),
            Expr::Unsafe(u) => self.unsupported(u.unsafe_token, "an `unsafe` block".into()),
            // `K as f64`, `x as f32`: the generated code computes in the network's scalar
            // anyway, so a cast between float types (or of an integer constant) is a no-op.
            Expr::Cast(c) if float_name(&c.ty).is_some() => self.expr(&c.expr, scopes),
            Expr::Cast(c) => self.unsupported(
                c,
                format!(
                    "a cast to `{}` (only `as f64` / `as f32`)",
                    crate::net::ast::tidy(&c.ty)
                ),
            ),
            other => self.unsupported(other, format!("the expression `{}`", short(other))),
        }
    }

    fn call(
        &mut self,
        method: &Ident,
        recv: Id,
        args: &[&Expr],
        whole: &dyn ToTokens,
        scopes: &mut Vec<(String, Bound)>,
    ) -> Id {
        let name = method.to_string();
        let want = match name.as_str() {
            "powi" | "powf" | "max" | "min" => 1,
            _ => 0,
        };
        if let Some(f) = Func::from_method(&name) {
            if args.len() != want {
                return self.unsupported(whole, format!("`{name}` with {} arguments", args.len()));
            }
            return self.g.call(f, recv);
        }
        match name.as_str() {
            "powi" | "powf" | "max" | "min" if args.len() != 1 => {
                self.unsupported(whole, format!("`{name}` with {} arguments", args.len()))
            }
            "powi" => match int_arg(args[0]) {
                Some(n) => self.g.powi(recv, n),
                None => self.unsupported(
                    args[0],
                    "`powi` of something other than an integer literal (write e.g. `x.powi(3)`)"
                        .into(),
                ),
            },
            "powf" => {
                let c = self.expr(args[0], scopes);
                if self.g.depends_on(c, 0) {
                    return self.unsupported(args[0], "`powf` with an exponent that depends on the argument (write a constant exponent, or `(c * x.ln()).exp()`)".into());
                }
                self.g.powf(recv, c)
            }
            "max" | "min" => {
                let other = self.expr(args[0], scopes);
                let (x, c) = match (self.g.depends_on(recv, 0), self.g.depends_on(other, 0)) {
                    (_, false) => (recv, other),
                    (false, true) => (other, recv),
                    (true, true) => {
                        return self.unsupported(whole, format!("`{name}` of two expressions that both depend on the argument (`max`/`min` only against a constant)"));
                    }
                };
                // max(x, c) = if x > c { x } else { c }: at a tie (and for NaN) the constant
                // side, so the derivative there is 0 (like `Relu` at its kink).
                let op = if name == "max" { Cmp::Gt } else { Cmp::Lt };
                let cond = self.g.cmp(op, x, c);
                self.g.select(cond, x, c)
            }
            _ => self.unsupported(method, format!("the method `{name}`")),
        }
    }

    fn if_expr(&mut self, i: &syn::ExprIf, scopes: &mut Vec<(String, Bound)>) -> Id {
        let cond = self.cond(&i.cond, scopes);
        let then = self.block(&i.then_branch, scopes);
        let els = match &i.else_branch {
            Some((_, e)) => self.expr(e, scopes),
            None => {
                return self.unsupported(
                    i.if_token,
                    "an `if` without `else` (both branches must give a value)".into(),
                );
            }
        };
        match cond {
            Some(c) => self.g.select(c, then, els),
            None => self.g.constant(0.0),
        }
    }

    fn cond(&mut self, e: &Expr, scopes: &mut Vec<(String, Bound)>) -> Option<Result<Id, bool>> {
        match e {
            Expr::Paren(p) => self.cond(&p.expr, scopes),
            Expr::Group(g) => self.cond(&g.expr, scopes),
            Expr::Binary(b) => {
                let op = match b.op {
                    BinOp::Lt(_) => Cmp::Lt,
                    BinOp::Le(_) => Cmp::Le,
                    BinOp::Gt(_) => Cmp::Gt,
                    BinOp::Ge(_) => Cmp::Ge,
                    BinOp::Eq(_) => Cmp::Eq,
                    BinOp::Ne(_) => Cmp::Ne,
                    BinOp::And(_) | BinOp::Or(_) => {
                        self.unsupported(
                            b.op,
                            format!(
                                "`{}` in a condition (nest the `if`s instead, one comparison each)",
                                crate::net::ast::tidy(&b.op)
                            ),
                        );
                        return None;
                    }
                    _ => {
                        self.unsupported(e, "a condition that is not a comparison".into());
                        return None;
                    }
                };
                let l = self.expr(&b.left, scopes);
                let r = self.expr(&b.right, scopes);
                Some(self.g.cmp(op, l, r))
            }
            Expr::Let(l) => {
                self.unsupported(l, "`if let`".into());
                None
            }
            other => {
                self.unsupported(other, "a condition that is not a comparison".into());
                None
            }
        }
    }
}

fn int_arg(e: &Expr) -> Option<i32> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => i.base10_parse::<i32>().ok(),
            _ => None,
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => int_arg(&u.expr).map(|n| -n),
        Expr::Paren(p) => int_arg(&p.expr),
        Expr::Group(g) => int_arg(&g.expr),
        _ => None,
    }
}

/// The source of `e`, shortened for messages.
fn short(e: &impl ToTokens) -> String {
    let s = crate::net::ast::tidy(e);
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(37).collect::<String>())
    } else {
        s
    }
}

fn generate(
    kind: Kind,
    f: &syn::ItemFn,
    sig: &Sig,
    mut g: Graph,
    names: HashMap<Id, String>,
    root: Id,
    ty_name: &str,
) -> TokenStream {
    let rt = crate::runtime_path();
    let real = quote!(#rt::Real);
    let vis = &f.vis;
    let fn_name = &f.sig.ident;
    let ty = Ident::new(ty_name, f.sig.ident.span());
    let d1 = g.diff(root, 0);
    let d2 = g.diff(d1, 0);
    let mut cx = EmitCx {
        scalar: quote!(T),
        rt: rt.clone(),
        args: &sig.args,
        names,
    };
    let value_body = emit_body(&mut g, &mut cx, &[root], &["f"]);
    let d1_body = emit_body(&mut g, &mut cx, &[root, d1], &["f", "df"]);
    let d2_body = emit_body(&mut g, &mut cx, &[root, d1, d2], &["f", "df", "d2f"]);
    let args = &sig.args;
    let params: Vec<TokenStream> = args.iter().map(|a| quote!(#a: T)).collect();
    let fn_ty: Vec<TokenStream> = f
        .sig
        .inputs
        .iter()
        .map(|a| match a {
            FnArg::Typed(pt) => pt.ty.to_token_stream(),
            FnArg::Receiver(_) => unreachable!("checked"),
        })
        .collect();
    let ret = match &f.sig.output {
        ReturnType::Type(_, t) => t.to_token_stream(),
        ReturnType::Default => unreachable!("checked"),
    };
    let name_lit = ty_name.to_string();
    // The function's own doc comments head the type's docs; the link to the function only
    // where rustdoc can follow it from a public type (a public function).
    let user_docs: Vec<&syn::Attribute> = f
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .collect();
    let sep = if user_docs.is_empty() {
        quote!()
    } else {
        quote!(#[doc = ""])
    };
    let fn_ref = if matches!(f.vis, syn::Visibility::Public(_)) {
        format!("[`{fn_name}`]")
    } else {
        format!("`{fn_name}`")
    };
    let allow = quote!(#[allow(unused_variables, clippy::all)]);
    // The user's function is used by this item, so it never warns as dead code, and the
    // type checks that its signature is what the derivatives were generated for.
    let keep = quote! {
        const _: fn(#(#fn_ty),*) -> #ret = #fn_name;
    };
    match kind {
        Kind::Activation => {
            let x = &args[0];
            let doc = format!(
                " The activation {fn_ref} as a type for network declarations, e.g. \
                 `Dense<I, O, {ty_name}>`.\n\n Generated by `#[activation]`: `f'` and `f''` \
                 were differentiated from the body of {fn_ref} at compile time \
                 (simplified, each repeated subexpression computed once). Works for `f32` \
                 and `f64` networks alike."
            );
            let value_doc = format!(" `{fn_name}({x})`.");
            let d1_doc = format!(" `({fn_name}({x}), {fn_name}'({x}))`.");
            let d2_doc = format!(" `({fn_name}({x}), {fn_name}'({x}), {fn_name}''({x}))`.");
            quote! {
                #f

                #(#user_docs)*
                #sep
                #[doc = #doc]
                #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
                #vis struct #ty;

                #keep

                #[automatically_derived]
                impl #rt::Activation for #ty {
                    const NAME: &'static str = #name_lit;

                    #[doc = #value_doc]
                    #[inline]
                    #allow
                    fn value<T: #real>(#x: T) -> T {
                        #value_body
                    }

                    #[doc = #d1_doc]
                    #[inline]
                    #allow
                    fn d1<T: #real>(#x: T) -> (T, T) {
                        #d1_body
                    }

                    #[doc = #d2_doc]
                    #[inline]
                    #allow
                    fn d2<T: #real>(#x: T) -> (T, T, T) {
                        #d2_body
                    }
                }
            }
        }
        Kind::Loss => {
            let (y, t) = (&args[0], &args[1]);
            let doc = format!(
                " The loss {fn_ref} as a type for network declarations: `loss: \
                 {ty_name}<O>` for `O` outputs, `L = 1/B sum_n sum_k {fn_name}(u[k][n], \
                 t[n][k])` with targets `[[T; O]; B]`.\n\n Generated by `#[loss]`: the \
                 derivatives with respect to `{y}` were differentiated from the body of \
                 {fn_ref} at compile time. Works for `f32` and `f64` networks alike."
            );
            let value_doc = format!(" `{fn_name}({y}, {t})`.");
            let d1_doc = format!(" `{fn_name}` and its derivative with respect to `{y}`.");
            let d2_doc =
                format!(" `{fn_name}` and its first and second derivatives with respect to `{y}`.");
            let sm = quote!(#rt::nalgebra::SMatrix);
            let el = quote!(#rt::elementwise);
            quote! {
                #f

                #(#user_docs)*
                #sep
                #[doc = #doc]
                #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
                #vis struct #ty<const O: usize>;

                #keep

                // SAFETY: zero-sized.
                #[automatically_derived]
                unsafe impl<const O: usize> #rt::bytemuck::Zeroable for #ty<O> {}

                #[automatically_derived]
                impl<const O: usize> #rt::ElementwiseLoss for #ty<O> {
                    const NAME: &'static str = #name_lit;

                    #[doc = #value_doc]
                    #[inline]
                    #allow
                    fn value<T: #real>(#(#params),*) -> T {
                        #value_body
                    }

                    #[doc = #d1_doc]
                    #[inline]
                    #allow
                    fn d1<T: #real>(#(#params),*) -> (T, T) {
                        #d1_body
                    }

                    #[doc = #d2_doc]
                    #[inline]
                    #allow
                    fn d2<T: #real>(#(#params),*) -> (T, T, T) {
                        #d2_body
                    }
                }

                /// The batch loss: each output's loss summed, averaged over the batch; its
                /// Hessian is diagonal.
                #[automatically_derived]
                impl<T: #real, const O: usize, const B: usize> #rt::Loss<T, O, B> for #ty<O> {
                    type Target = [[T; O]; B];

                    fn check(t: &Self::Target) -> ::core::result::Result<(), #rt::NetError> {
                        #el::check(t)
                    }

                    fn value(u: &#sm<T, O, B>, t: &Self::Target) -> T {
                        #el::value::<Self, T, O, B>(u, t)
                    }

                    fn gradient(u: &#sm<T, O, B>, t: &Self::Target) -> (T, #sm<T, O, B>) {
                        #el::gradient::<Self, T, O, B>(u, t)
                    }

                    fn hess_apply(u: &#sm<T, O, B>, t: &Self::Target, y: &#sm<T, O, B>) -> #sm<T, O, B> {
                        #el::hess_apply::<Self, T, O, B>(u, t, y)
                    }

                    fn hess_block(u: &#sm<T, O, B>, t: &Self::Target, n: usize) -> #sm<T, O, O> {
                        #el::hess_block::<Self, T, O, B>(u, t, n)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        let n = |s: &str| type_name(&Ident::new(s, Span::call_site()));
        assert_eq!(n("softsign"), "Softsign");
        assert_eq!(n("scaled_tanh"), "ScaledTanh");
        assert_eq!(n("rat_2_3"), "Rat2_3");
        assert_eq!(n("leaky_relu2"), "LeakyRelu2");
        assert_eq!(n("_private"), "Private");
    }

    #[test]
    fn softsign_expands() {
        let out = expand_activation(
            quote!(),
            quote!(
                fn softsign(x: f64) -> f64 {
                    x / (1.0 + x.abs())
                }
            ),
        )
        .unwrap();
        let s = out.to_string();
        assert!(s.contains("struct Softsign"), "{s}");
        assert!(
            s.contains("impl :: tall_skinny :: runtime :: __private :: Activation for Softsign"),
            "{s}"
        );
    }

    #[test]
    fn independent_branches_are_bounded_but_chains_are_not() {
        // Twelve independent clamps: 2^12 combinations.
        let err = expand_activation(
            quote!(),
            quote!(
                fn many(x: f64) -> f64 {
                    x.max(0.1)
                        + x.max(0.2)
                        + x.max(0.3)
                        + x.max(0.4)
                        + x.max(0.5)
                        + x.max(0.6)
                        + x.max(0.7)
                        + x.max(0.8)
                        + x.max(0.9)
                        + x.max(1.0)
                        + x.max(1.1)
                        + x.max(1.2)
                }
            ),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("more than 64 combinations"),
            "{err}"
        );
        // A chain of 30 pieces is 30 blocks.
        let mut body = quote!(x);
        for k in (0..30).rev() {
            let c = proc_macro2::Literal::f64_unsuffixed(k as f64);
            body = quote!(if x < #c { x * #c } else { #body });
        }
        expand_activation(quote!(), quote!(fn chain(x: f64) -> f64 { #body })).unwrap();
    }

    #[test]
    fn wrong_items_and_names() {
        let err = expand_activation(
            quote!(),
            quote!(
                struct Softsign;
            ),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("#[activation] goes on a function"),
            "{err}"
        );
        let err = expand_activation(
            quote!(),
            quote!(
                fn Softsign(x: f64) -> f64 {
                    x
                }
            ),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("write the function in snake_case, e.g. `fn softsign`"),
            "{err}"
        );
        let err = expand_loss(
            quote!(),
            quote!(
                fn l(y: f64, t: f64) -> f64 {
                    let z = y;
                }
            ),
        )
        .unwrap_err();
        assert!(err.to_string().contains("must end in the value"), "{err}");
    }

    #[test]
    fn errors_are_collected() {
        let err = expand_activation(
            quote!(),
            quote!(
                fn f(x: f64) -> f64 {
                    let y = x % 2.0;
                    y.exp2() + g(x) + f(x)
                }
            ),
        )
        .unwrap_err();
        let msgs: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:#?}");
        assert!(msgs[0].contains("the operator `%`"));
        assert!(msgs[1].contains("the method `exp2`"));
        assert!(msgs[2].contains("the call of `g`"));
        assert!(msgs[3].contains("calls itself"));
    }
}
