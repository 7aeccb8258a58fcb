//! The net's sizes, parameters and derivative methods: each a call into the runtime with
//! the list of the layers.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{lit, upper, Ctx};
use crate::net::ast::{LayerKind, LossKind};

pub(crate) fn inherent_impl(cx: &Ctx) -> TokenStream {
    let (pv, t, net) = (&cx.pv, &cx.t, cx.net);
    let ident = &net.ident;
    let bounds = &cx.bounds;
    let (in_ty, out_ty, target_ty, vec_ty, ws) =
        (&cx.in_ty, &cx.out_ty, &cx.target_ty, &cx.vec_ty, &cx.ws_ty);
    let (inputs, outputs, batch, depth, n) = (
        lit(net.layers[0].inputs.value),
        lit(net.loss.width.value),
        lit(net.batch),
        lit(net.depth()),
        lit(net.n_params()),
    );
    let n_res = lit(net
        .layers
        .iter()
        .filter(|l| l.kind == LayerKind::Residual)
        .map(|l| l.count())
        .sum());
    let mut consts = Vec::new();
    let mut offset = 0;
    for f in &net.layers {
        let (off, p) = (
            format_ident!("OFFSET_{}", upper(&f.ident)),
            format_ident!("PARAMS_{}", upper(&f.ident)),
        );
        let off_doc = format!(
            " Offset of layer `{}` in the flat parameter vector.",
            f.ident
        );
        let p_doc = if f.array.is_some() {
            format!(" Parameters of each element of layer `{}`.", f.ident)
        } else {
            format!(" Parameters of layer `{}`.", f.ident)
        };
        let (offv, pv_) = (lit(offset), lit(f.params_each()));
        consts.push(quote! {
            #[doc = #off_doc]
            pub const #off: usize = #offv;
            #[doc = #p_doc]
            pub const #p: usize = #pv_;
        });
        offset += f.params();
    }
    let names: Vec<_> = net.layers.iter().map(|f| &f.ident).collect();
    let lists = &cx.lists;
    let acts = super::custom_activation_args(net);
    let build = |m: TokenStream| {
        names.iter().rev().fold(
            quote!(#pv::Nil),
            |rest, name| quote!(#pv::Cons(&#m self.#name, #rest)),
        )
    };
    let (build_ref, build_mut) = (build(quote!()), build(quote!(mut)));
    let zero = names.iter().map(|name| quote!(#name: #pv::ConstZero::ZERO));
    let loss_name = &net.loss.ident;
    let loss_value = super::loss_value(net, pv);
    let target_doc = match net.loss.kind {
        LossKind::Mse => "`t` holds one target row per sample.",
        LossKind::SoftmaxCrossEntropy => "`t` holds one class label per sample.",
        LossKind::Custom => "`t` holds one target row per sample.",
    };
    let grad_doc = format!(
        " The batch loss and its gradient with respect to the flat parameters, written to \
         `grad`. {target_doc} Keeps a [`{ws}`] on the stack ({}); [`Self::gradient_in`] takes \
         the caller's.",
        crate::net::sizes::human(crate::net::sizes::workspace(net))
    );
    quote! {
        impl #ident #bounds {
            /// Number of parameters: the length of the flat parameter vector.
            pub const N_PARAMS: usize = #n;
            /// Input width of one sample.
            pub const INPUTS: usize = #inputs;
            /// Output width of one sample (classes, for softmax cross-entropy).
            pub const OUTPUTS: usize = #outputs;
            /// Samples per batch (fixed at compile time).
            pub const BATCH: usize = #batch;
            /// Number of parameterised stages (array elements counted one by one).
            pub const DEPTH: usize = #depth;
            #(#consts)*

            /// All parameters zero; usable in `const` and `static` items.
            pub const ZERO: Self = Self { #(#zero,)* #loss_name: #loss_value };

            /// The layers in order, as the list the runtime's passes walk.
            #[inline(always)]
            fn layers(&self) -> #lists::Layers<'_, #(#acts),*> {
                #build_ref
            }

            /// The layers in order, for writing.
            #[inline(always)]
            fn layers_mut(&mut self) -> #lists::LayersMut<'_, #(#acts),*> {
                #build_mut
            }

            /// A network with deterministic, scaled random weights (LeCun-uniform, residual
            /// branches scaled by `1/sqrt(residual stages)`) and zero biases.
            pub fn init(seed: u64) -> Self {
                let mut net = Self::ZERO;
                net.init_in_place(seed);
                net
            }

            /// [`Self::init`] in place (for networks held in a `static` or a `Box`).
            pub fn init_in_place(&mut self, seed: u64) {
                #pv::init(self.layers_mut(), seed, #n_res)
            }

            /// Writes the flat parameter vector to `out` (layout in the type's docs).
            pub fn params(&self, out: &mut #vec_ty) {
                #pv::write_params(&self.layers(), out)
            }

            /// Sets every parameter from the flat vector `params`; rejects (and leaves the
            /// network unchanged on) a NaN or infinite entry.
            pub fn set_params(&mut self, params: &#vec_ty) -> ::core::result::Result<(), #pv::NetError> {
                #pv::read_params(self.layers_mut(), params)
            }

            /// `Err` naming the first NaN or infinite parameter, if any.
            pub fn check_params(&self) -> ::core::result::Result<(), #pv::NetError> {
                #pv::check_params(&self.layers())
            }

            /// A 64-bit fingerprint of the parameters: the storages record the one they were
            /// filled at, so a use after the parameters changed is detected.
            pub fn fingerprint(&self) -> u64 {
                #pv::fingerprint(&self.layers())
            }

            /// The network outputs (before the loss) for a batch of inputs.
            pub fn forward(&self, x: &#in_ty) -> ::core::result::Result<#out_ty, #pv::NetError> {
                #pv::forward(&self.layers(), x)
            }

            /// The batch loss.
            pub fn loss(&self, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<#t, #pv::NetError> {
                #pv::loss(&self.layers(), &self.#loss_name, x, t)
            }

            #[doc = #grad_doc]
            pub fn gradient(&self, x: &#in_ty, t: &#target_ty, grad: &mut #vec_ty) -> ::core::result::Result<#t, #pv::NetError> {
                let mut ws = #ws::ZERO;
                self.gradient_in(&mut ws, x, t, grad)
            }

            /// The batch loss and its gradient (written to `grad`), with the caller's
            /// scratch `ws`.
            pub fn gradient_in(&self, ws: &mut #ws, x: &#in_ty, t: &#target_ty, grad: &mut #vec_ty) -> ::core::result::Result<#t, #pv::NetError> {
                #pv::gradient(&self.layers(), &self.#loss_name, ws, x, t, grad)
            }

            /// The exact Hessian-vector product `H v` of the batch loss, written to `out`
            /// (one forward-tangent and one backward pass; no `N x N` matrix). Keeps a
            /// workspace on the stack; see [`Self::hvp_in`].
            pub fn hvp(&self, x: &#in_ty, t: &#target_ty, v: &#vec_ty, out: &mut #vec_ty) -> ::core::result::Result<(), #pv::NetError> {
                let mut ws = #ws::ZERO;
                self.hvp_in(&mut ws, x, t, v, out)
            }

            /// [`Self::hvp`] with the caller's scratch `ws`.
            pub fn hvp_in(&self, ws: &mut #ws, x: &#in_ty, t: &#target_ty, v: &#vec_ty, out: &mut #vec_ty) -> ::core::result::Result<(), #pv::NetError> {
                #pv::hvp(&self.layers(), &self.#loss_name, ws, x, t, v, out)
            }

            /// The exact Gauss-Newton-vector product `G v = J' Hl J v` of the batch loss,
            /// written to `out`. Keeps a workspace on the stack; see [`Self::ggn_vp_in`].
            pub fn ggn_vp(&self, x: &#in_ty, t: &#target_ty, v: &#vec_ty, out: &mut #vec_ty) -> ::core::result::Result<(), #pv::NetError> {
                let mut ws = #ws::ZERO;
                self.ggn_vp_in(&mut ws, x, t, v, out)
            }

            /// [`Self::ggn_vp`] with the caller's scratch `ws`.
            pub fn ggn_vp_in(&self, ws: &mut #ws, x: &#in_ty, t: &#target_ty, v: &#vec_ty, out: &mut #vec_ty) -> ::core::result::Result<(), #pv::NetError> {
                #pv::ggn_vp(&self.layers(), &self.#loss_name, ws, x, t, v, out)
            }
        }
    }
}
