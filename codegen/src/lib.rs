//! The logic of `#[tall_skinny_net]`, as plain functions on token streams.
//!
//! [`expand`](fn@expand) is the whole macro: `proc_macro2::TokenStream` in, `syn::Result<TokenStream>`
//! out, so it can be unit-tested, golden-tested and fuzzed outside the compiler. The
//! `tall-skinny-macros` crate is a thin wrapper around it.
//!
//! [`expand_activation`](fn@expand_activation) and [`expand_loss`] are `#[activation]` and
//! `#[loss]`: a scalar function becomes a type whose derivatives are differentiated from
//! its body at compile time ([`symbolic`]: the expression DAG, simplifier, differentiation
//! and emission; [`mod@expand_activation`]: parsing the body and writing the items).
//!
//! The steps of `#[tall_skinny_net]`, one file each: [`attr`] parses the attribute arguments, [`ast`] parses the
//! struct into the model of a network, [`check`] validates it (widths that chain, a loss
//! that comes last, ...), and [`expand`](mod@expand) writes the code. Every step collects all the errors it
//! finds ([`errors::Errors`]) so a user sees every mistake of a declaration at once.

pub mod ast;
pub mod attr;
pub mod check;
pub mod errors;
pub mod expand;
pub mod expand_activation;
mod expand_ggn;
mod expand_solve;
pub mod symbolic;

pub use expand_activation::{
    expand_activation, expand_activation_or_error, expand_loss, expand_loss_or_error,
};

use proc_macro2::TokenStream;

/// Expands `#[tall_skinny_net(attr)] item`.
pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = attr::parse_args(attr);
    let item: syn::Item = syn::parse2(item)?;
    let net = ast::Net::from_item(&item, args)?;
    check::check(&net)?;
    Ok(expand::expand(&net))
}

/// What the proc macro emits when [`expand`](fn@expand) fails: the errors, plus a minimal stand-in for
/// the item (a field-less struct of the same name) so that the user sees the declaration's
/// errors and not a cascade of "cannot find type" errors elsewhere.
pub fn expand_or_error(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr, item.clone()) {
        Ok(tokens) => tokens,
        Err(err) => {
            let mut out = err.to_compile_error();
            if let Ok(syn::Item::Struct(s)) = syn::parse2::<syn::Item>(item) {
                let vis = &s.vis;
                let ident = &s.ident;
                out.extend(quote::quote! {
                    #[allow(dead_code)]
                    #vis struct #ident {}
                });
            }
            out
        }
    }
}
