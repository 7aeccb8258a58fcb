//! The logic of `#[tall_skinny_net]`, `#[activation]` and `#[loss]`, as plain functions on
//! token streams.
//!
//! [`expand`](fn@expand) is the whole `#[tall_skinny_net]` macro: `proc_macro2::TokenStream`
//! in, `syn::Result<TokenStream>` out, so it can be unit-tested, golden-tested and fuzzed
//! outside the compiler. The `tall-skinny-macros` crate is a thin wrapper around it.
//!
//! - [`net`]: the network macro, one step per module: [`net::attr`] parses the attribute
//!   arguments, [`net::ast`] parses the struct into the model of a network, [`net::check`]
//!   validates it (widths that chain, a loss that comes last, ...), and [`net::expand`]
//!   writes the code. Every step collects all the errors it finds ([`errors::Errors`]) so a
//!   user sees every mistake of a declaration at once.
//! - [`scalar_fn`]: [`expand_activation`](fn@expand_activation) and [`expand_loss`]
//!   (`#[activation]` and `#[loss]`): a scalar function becomes a type whose derivatives are
//!   differentiated from its body at compile time ([`scalar_fn::symbolic`]: the expression
//!   DAG, simplifier, differentiation and emission).

pub mod errors;
pub mod net;
pub mod scalar_fn;

pub use scalar_fn::{
    expand_activation, expand_activation_or_error, expand_loss, expand_loss_or_error,
};

use proc_macro2::TokenStream;

/// The one runtime path generated code names: `::tall_skinny::runtime::__private`, the
/// runtime's hidden module that re-exports what generated code needs.
pub(crate) fn runtime_path() -> TokenStream {
    quote::quote!(::tall_skinny::runtime::__private)
}

/// Expands `#[tall_skinny_net(attr)] item`.
pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = net::attr::parse_args(attr);
    let item: syn::Item = syn::parse2(item)?;
    let net = net::ast::Net::from_item(&item, args)?;
    net::check::check(&net)?;
    Ok(net::expand::expand(&net))
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
