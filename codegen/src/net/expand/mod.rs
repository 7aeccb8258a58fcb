//! Code generation for a validated [`Net`]: declarations and one-line methods.
//!
//! The generated code does not sequence the layers itself. It declares the struct (the
//! fields rewritten to the runtime's layer types), the storage types (aliases of the
//! runtime's generic storages, instantiated with the lists of this net's per-layer records
//! and stages), a private `layers()` that lists references to the fields, and methods that
//! each make one call into the runtime with that list. Every runtime path is named through
//! `crate::runtime_path()`, the runtime's hidden `__private` module.
//!
//! - `derivs`: parameters, forward, loss, gradient, `H v`, `G v`;
//! - `solve`: the curvature storages, the Hessian solve and the Gauss-Newton solves;
//! - `model`: the `Model` impl the optimizers use;
//! - `infer`: batch-independent evaluation (one sample, any number of samples, metrics);
//! - `record`: the architecture fingerprint and the checked byte record (save and load).

mod derivs;
mod infer;
mod model;
mod record;
mod solve;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::net::ast::{Act, LayerField, LayerKind, LossKind, Net};
use crate::net::attr::Scalar;

/// What the code of the whole net needs.
pub(crate) struct Ctx<'a> {
    pub(crate) net: &'a Net,
    /// `::tall_skinny::runtime::__private`: the one path generated code names.
    pub(crate) pv: TokenStream,
    /// `f32` or `f64`.
    pub(crate) t: TokenStream,
    /// `[[T; INPUTS]; BATCH]`
    pub(crate) in_ty: TokenStream,
    /// `[[T; OUTPUTS]; BATCH]`
    pub(crate) out_ty: TokenStream,
    /// The loss's target batch type.
    pub(crate) target_ty: TokenStream,
    /// `[T; N_PARAMS]`
    pub(crate) vec_ty: TokenStream,
    /// The runtime type of each layer field (an array type for array fields).
    pub(crate) field_tys: Vec<TokenStream>,
    /// `where Softsign: Activation, Huber<1>: Loss<..>` for the custom activations and
    /// loss of the declaration (empty without them). Every item that names a layer or loss
    /// type carries it: a type that is no activation is then one error on its name in the
    /// declaration, and the items' bodies type-check under the bound (no cascade).
    pub(crate) bounds: TokenStream,
    /// The hidden module with the lists of this net's records and stages.
    pub(crate) lists: Ident,
    pub(crate) ws_ty: Ident,
    pub(crate) curv_ty: Ident,
    pub(crate) factored_ty: Ident,
    pub(crate) ggn_ty: Ident,
}

pub(crate) fn lit(n: usize) -> proc_macro2::Literal {
    proc_macro2::Literal::usize_unsuffixed(n)
}

fn upper(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").unwrap_or(&s).to_uppercase()
}

fn plain(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").unwrap_or(&s).to_string()
}

/// The runtime type of one layer of field `f` with activation `act`.
fn layer_ty(pv: &TokenStream, t: &TokenStream, f: &LayerField, act: &TokenStream) -> TokenStream {
    let (i, o) = (lit(f.inputs.value), lit(f.outputs.value));
    let (bias, res) = (f.kind.bias(), f.kind == LayerKind::Residual);
    quote!(#pv::Layer<#t, #act, #i, #o, #bias, #res>)
}

/// `[X; N]` for array fields, `X` otherwise.
fn field_of(f: &LayerField, one: TokenStream) -> TokenStream {
    match f.array {
        Some(n) => {
            let n = lit(n.value);
            quote!([#one; #n])
        }
        None => one,
    }
}

/// `Cons<a, Cons<b, .. Nil>>`.
fn list(pv: &TokenStream, items: impl DoubleEndedIterator<Item = TokenStream>) -> TokenStream {
    items.rev().fold(
        quote!(#pv::Nil),
        |rest, head| quote!(#pv::Cons<#head, #rest>),
    )
}

/// Writes the expansion of `net`.
pub fn expand(net: &Net) -> TokenStream {
    let pv = crate::runtime_path();
    let t = match net.scalar {
        Scalar::F32 => quote!(f32),
        Scalar::F64 => quote!(f64),
    };
    let (inputs, outputs, bl, n) = (
        lit(net.layers[0].inputs.value),
        lit(net.loss.width.value),
        lit(net.batch),
        lit(net.n_params()),
    );
    let field_tys = net
        .layers
        .iter()
        .map(|f| {
            let act = match &f.act {
                Act::Builtin(name) => quote!(#pv::#name),
                Act::Custom(path) => quote!(#path),
            };
            field_of(f, layer_ty(&pv, &t, f, &act))
        })
        .collect();
    let loss_ty = loss_type(net, &pv);
    let target_ty = match net.loss.kind {
        LossKind::SoftmaxCrossEntropy => quote!([usize; #bl]),
        // `#[loss]` losses and `Mse` take one target row per sample; spelled out (not as the
        // loss's associated type) so that a public net may have a private loss type.
        LossKind::Mse | LossKind::Custom => quote!([[#t; #outputs]; #bl]),
    };
    let ident = &net.ident;
    let cx = Ctx {
        bounds: custom_bounds(net, &pv, &t),
        net,
        in_ty: quote!([[#t; #inputs]; #bl]),
        out_ty: quote!([[#t; #outputs]; #bl]),
        target_ty,
        vec_ty: quote!([#t; #n]),
        field_tys,
        lists: format_ident!("__{}", plain(ident)),
        ws_ty: format_ident!("{}Workspace", plain(ident)),
        curv_ty: format_ident!("{}Curvature", plain(ident)),
        factored_ty: format_ident!("{}Factored", plain(ident)),
        ggn_ty: format_ident!("{}Ggn", plain(ident)),
        pv,
        t,
    };
    let _ = loss_ty;
    let item = net_struct(&cx);
    let lists = lists_module(&cx);
    let storage = solve::storage_aliases(&cx);
    let inherent = derivs::inherent_impl(&cx);
    let solve = solve::solve_impl(&cx);
    let model = model::model_impl(&cx);
    let infer = infer::infer_impl(&cx);
    let record = record::record_impl(&cx);
    quote! {
        #item
        #lists
        #storage
        #inherent
        #solve
        #model
        #infer
        #record
    }
}

/// A custom activation's path as a comparable string.
fn path_key(path: &syn::Path) -> String {
    quote!(#path).to_string()
}

/// The distinct custom activation paths of the declaration, in order of first use.
fn custom_activations(net: &Net) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in &net.layers {
        if let Act::Custom(path) = &f.act {
            let k = path_key(path);
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

/// The custom activation types, as written, in the order of [`custom_activations`]: the
/// arguments of the lists module's `Layers` aliases.
pub(crate) fn custom_activation_args(net: &Net) -> Vec<TokenStream> {
    let mut keys: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for f in &net.layers {
        if let Act::Custom(path) = &f.act {
            let k = path_key(path);
            if !keys.contains(&k) {
                keys.push(k);
                out.push(quote!(#path));
            }
        }
    }
    out
}

/// `where Softsign: Activation, ..` for the custom types of the declaration.
fn custom_bounds(net: &Net, pv: &TokenStream, t: &TokenStream) -> TokenStream {
    let mut custom: Vec<TokenStream> = Vec::new();
    for f in &net.layers {
        if let Act::Custom(path) = &f.act {
            // Spanned on the declaration's path: a type that is no activation is reported
            // there.
            let span = syn::spanned::Spanned::span(path);
            let b = quote::quote_spanned!(span=> #path: #pv::Activation);
            if !custom.iter().any(|c| c.to_string() == b.to_string()) {
                custom.push(b);
            }
        }
    }
    if net.loss.kind == LossKind::Custom {
        let span = syn::spanned::Spanned::span(&net.loss.ty);
        let loss_ty = loss_type(net, pv);
        let (o, b) = (lit(net.loss.width.value), lit(net.batch));
        // The target type is spelled out (a `#[loss]` loss takes one row per sample), so
        // that the items' signatures need not name the loss type.
        custom.push(
            quote::quote_spanned!(span=> #loss_ty: #pv::Loss<#t, #o, #b, Target = [[#t; #o]; #b]>),
        );
    }
    match custom.first() {
        None => quote!(),
        Some(first) => {
            let span = first
                .clone()
                .into_iter()
                .next()
                .map_or_else(proc_macro2::Span::call_site, |t| t.span());
            quote::quote_spanned!(span=> where #(#custom),*)
        }
    }
}

/// The type of the loss field, e.g. `__private::Mse<2>` or `Huber<2>`.
pub(crate) fn loss_type(net: &Net, pv: &TokenStream) -> TokenStream {
    let width = lit(net.loss.width.value);
    match (&net.loss.kind, &net.loss.custom) {
        (LossKind::Custom, Some(path)) => quote!(#path<#width>),
        (LossKind::SoftmaxCrossEntropy, _) => quote!(#pv::SoftmaxCrossEntropy<#width>),
        _ => quote!(#pv::Mse<#width>),
    }
}

/// The loss field's value, e.g. `__private::Mse::<2>` (losses are unit structs).
pub(crate) fn loss_value(net: &Net, pv: &TokenStream) -> TokenStream {
    let width = lit(net.loss.width.value);
    match (&net.loss.kind, &net.loss.custom) {
        (LossKind::Custom, Some(path)) => quote!(#path::<#width>),
        (LossKind::SoftmaxCrossEntropy, _) => quote!(#pv::SoftmaxCrossEntropy::<#width>),
        _ => quote!(#pv::Mse::<#width>),
    }
}

pub(crate) fn layer_desc(f: &LayerField) -> String {
    let act = f.act.to_string();
    let one = match f.kind {
        LayerKind::Residual => format!("Residual<{}, {act}>", f.inputs.value),
        k => format!(
            "{}<{}, {}, {act}>",
            k.name(),
            f.inputs.value,
            f.outputs.value
        ),
    };
    match f.array {
        Some(n) => format!("[{one}; {}]", n.value),
        None => one,
    }
}

fn net_struct(cx: &Ctx) -> TokenStream {
    let net = cx.net;
    let pv = &cx.pv;
    let attrs = &net.attrs;
    let vis = &net.vis;
    let ident = &net.ident;
    let mut table = String::from(
        "\n\n# Parameters\n\nGenerated by `#[tall_skinny_net]`. The flat parameter vector (`params`, \
         `set_params`, `gradient`, `hvp`) holds the layers in declaration order; within a \
         layer, `W` row-major (`W[k][i]`, output `k`, input `i`) and then the bias.\n\n\
         | field | layer | parameters | offset |\n|---|---|---|---|\n",
    );
    let mut offset = 0;
    for f in &net.layers {
        let each = if f.array.is_some() {
            format!("{} ({} each)", f.params(), f.params_each())
        } else {
            f.params().to_string()
        };
        table.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            f.ident,
            layer_desc(f),
            each,
            offset
        ));
        offset += f.params();
    }
    table.push_str(&format!(
        "\nBatch {}, scalar `{}`, depth {} stages, {} parameters.",
        net.batch,
        net.scalar.name(),
        net.depth(),
        net.n_params()
    ));
    let fields = net.layers.iter().zip(&cx.field_tys).map(|(f, ty)| {
        let attrs = &f.attrs;
        let vis = &f.vis;
        let name = &f.ident;
        let doc = format!(" Layer `{}`: `{}`.", name, layer_desc(f));
        quote! {
            #(#attrs)*
            #[doc = #doc]
            #vis #name: #ty
        }
    });
    let loss = &net.loss;
    let loss_attrs = &loss.attrs;
    let loss_vis = &loss.vis;
    let loss_name = &loss.ident;
    let loss_field_ty = loss_type(net, pv);
    let loss_doc = format!(
        " The loss: `{}<{}>` (no parameters).",
        loss.name(),
        loss.width.value
    );
    let bounds = &cx.bounds;
    let field_tys = &cx.field_tys;
    quote! {
        #(#attrs)*
        #[doc = #table]
        #[derive(Clone, Debug)]
        #vis struct #ident #bounds {
            #(#fields,)*
            #(#loss_attrs)*
            #[doc = #loss_doc]
            #loss_vis #loss_name: #loss_field_ty,
        }
        // SAFETY: every field is a `Zeroable` runtime layer (asserted below) or the
        // zero-sized loss, so all-zero bytes are a valid value.
        #[automatically_derived]
        unsafe impl #pv::bytemuck::Zeroable for #ident #bounds {}
        const _: () = {
            fn assert_fields_zeroable() #bounds {
                fn assert_zeroable<Z: #pv::bytemuck::Zeroable>() {}
                #(assert_zeroable::<#field_tys>();)*
            }
        };
    }
}

/// The hidden module of type lists: the records of a forward pass, the stages, the weights,
/// and the list of references to the layer fields.
fn lists_module(cx: &Ctx) -> TokenStream {
    let (t, net) = (&cx.t, cx.net);
    let rt = quote!(rt);
    let b = net.batch;
    let bl = lit(b);
    let tapes = list(
        &rt,
        net.layers.iter().map(|f| {
            let o = lit(f.outputs.value);
            field_of(f, quote!(rt::Tape<#t, #o, #bl>))
        }),
    );
    let stages = list(
        &rt,
        net.layers.iter().map(|f| {
            let (i, o) = (f.inputs.value, f.outputs.value);
            let i1 = i + usize::from(f.kind.bias());
            let r = b.min(i1);
            let (il, ol, i1l, rl) = (lit(i), lit(o), lit(i1), lit(r));
            let (bo, bi, ro) = (lit(b * o), lit(b * i), lit(r * o));
            let shape = layer_ty(&rt, t, f, &quote!(rt::Identity));
            field_of(
                f,
                quote!(rt::Slot<#shape, rt::Stage<#t, #il, #ol, #bl, #i1l, #rl, #bo, #bi, #ro>>),
            )
        }),
    );
    let erased = list(
        &rt,
        net.layers
            .iter()
            .map(|f| field_of(f, layer_ty(&rt, t, f, &quote!(rt::Identity)))),
    );
    // Custom activations are parameters of the aliases (the module cannot name the user's
    // types: a net may be declared inside a function body).
    let customs = custom_activations(net);
    let params: Vec<Ident> = (0..customs.len()).map(|k| format_ident!("A{k}")).collect();
    let fields: Vec<TokenStream> = net
        .layers
        .iter()
        .map(|f| {
            let act = match &f.act {
                Act::Builtin(name) => quote!(rt::#name),
                Act::Custom(path) => {
                    let k = customs
                        .iter()
                        .position(|c| c == &path_key(path))
                        .expect("collected above");
                    let a = &params[k];
                    quote!(#a)
                }
            };
            field_of(f, layer_ty(&rt, t, f, &act))
        })
        .collect();
    let refs = list(&rt, fields.iter().map(|ty| quote!(&'a #ty)));
    let muts = list(&rt, fields.iter().map(|ty| quote!(&'a mut #ty)));
    let lists = &cx.lists;
    let doc = format!(
        " The lists of [`{}`]'s layers and of their records, stages and weights.",
        net.ident
    );
    quote! {
        #[doc = #doc]
        #[doc(hidden)]
        #[allow(non_snake_case, unused_imports)]
        mod #lists {
            use ::tall_skinny::runtime::__private as rt;
            /// References to the layer fields, in order.
            pub type Layers<'a, #(#params),*> = #refs;
            /// Mutable references to the layer fields, in order.
            pub type LayersMut<'a, #(#params),*> = #muts;
            /// The records of one forward pass, one per layer.
            pub type Tapes = #tapes;
            /// The solve data, one stage per layer.
            pub type Stages = #stages;
            /// The weights alone (activations erased).
            pub type Weights = #erased;
        }
    }
}
