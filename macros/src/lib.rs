//! The `#[tall_skinny_net]` attribute. All logic lives in `tall-skinny-codegen`; see the
//! `tall_skinny` crate for documentation.

use proc_macro::TokenStream;

/// Generates a specialised, stack-allocated implementation of the declared chain network:
/// forward pass, loss, gradient and exact Hessian-vector product. See the `tall_skinny`
/// crate docs for the declaration syntax.
#[proc_macro_attribute]
pub fn tall_skinny_net(attr: TokenStream, item: TokenStream) -> TokenStream {
    tall_skinny_codegen::expand_or_error(attr.into(), item.into()).into()
}
