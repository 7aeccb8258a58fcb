//! The `Model` impl: what the optimizers need, each method a call to the net's own.

use proc_macro2::TokenStream;
use quote::quote;

use super::{lit, solve::woodbury_method, Ctx};
use crate::net::ast::LossKind;

pub(crate) fn model_impl(cx: &Ctx) -> TokenStream {
    let (pv, t, net) = (&cx.pv, &cx.t, cx.net);
    let ident = &net.ident;
    let bounds = &cx.bounds;
    let (in_ty, target_ty, vec_ty, out_ty) = (&cx.in_ty, &cx.target_ty, &cx.vec_ty, &cx.out_ty);
    let (ws, curv, ggn) = (&cx.ws_ty, &cx.curv_ty, &cx.ggn_ty);
    let n = lit(net.n_params());
    let loss_name = &net.loss.ident;
    let (inputs, batch) = (lit(net.layers[0].inputs.value), lit(net.batch));
    let sample_ty = match net.loss.kind {
        LossKind::SoftmaxCrossEntropy => quote!(usize),
        LossKind::Mse | LossKind::Custom => {
            let outputs = lit(net.loss.width.value);
            quote!([#t; #outputs])
        }
    };
    let (gn_ty, gn_fill, scratch_ty, grad_gn) = if woodbury_method(cx) {
        (
            quote!(#ggn),
            quote!(ggn_woodbury_into),
            quote!(#pv::NoScratch),
            quote!(#pv::woodbury_gradient_into(&self.layers(), &self.#loss_name, g, x, t, grad)),
        )
    } else {
        (
            quote!(#curv),
            quote!(ggn_curvature_into),
            quote!(#ws),
            quote!({
                let value = self.gradient_in(scratch, x, t, grad)?;
                self.ggn_curvature_into(g, x, t)?;
                ::core::result::Result::Ok(value)
            }),
        )
    };
    let r = quote!(::core::result::Result);
    quote! {
        impl #pv::Model for #ident #bounds {
            type Scalar = #t;
            type Input = #in_ty;
            type Target = #target_ty;
            type Sample = [#t; #inputs];
            type SampleTarget = #sample_ty;
            type Vector = #vec_ty;
            type Outputs = #out_ty;
            type Workspace = #ws;
            type Hessian = #curv;
            type GaussNewton = #gn_ty;
            type GnScratch = #scratch_ty;
            const N_PARAMS: usize = #n;
            const GGN_METHOD: #pv::GgnMethod = #ident::GGN_METHOD;
            const BATCH: usize = #batch;

            fn get_params(&self, out: &mut #vec_ty) {
                self.params(out)
            }
            fn put_params(&mut self, p: &#vec_ty) -> #r<(), #pv::NetError> {
                self.set_params(p)
            }
            fn fingerprint(&self) -> u64 {
                #ident::fingerprint(self)
            }
            fn loss_all_at(&self, xs: &[[#t; #inputs]], ts: &[#sample_ty]) -> #r<#t, #pv::NetError> {
                self.loss_all(xs, ts)
            }
            fn fill_batch<Ix: ::core::convert::AsRef<[usize]> + ::core::convert::AsMut<[usize]>>(
                batches: &mut #pv::MiniBatches<'_, [#t; #inputs], #sample_ty, Ix>,
                x: &mut #in_ty,
                t: &mut #target_ty,
            ) -> #r<bool, #pv::DataError> {
                batches.fill(x, t)
            }
            fn outputs_at(&self, x: &#in_ty, out: &mut #out_ty) -> #r<(), #pv::NetError> {
                *out = self.forward(x)?;
                ::core::result::Result::Ok(())
            }
            fn loss_at(&self, x: &#in_ty, t: &#target_ty) -> #r<#t, #pv::NetError> {
                self.loss(x, t)
            }
            fn gradient_into(&self, ws: &mut #ws, x: &#in_ty, t: &#target_ty, g: &mut #vec_ty) -> #r<#t, #pv::NetError> {
                self.gradient_in(ws, x, t, g)
            }
            fn hvp_into(&self, ws: &mut #ws, x: &#in_ty, t: &#target_ty, v: &#vec_ty, out: &mut #vec_ty) -> #r<(), #pv::NetError> {
                self.hvp_in(ws, x, t, v, out)
            }
            fn ggn_vp_into(&self, ws: &mut #ws, x: &#in_ty, t: &#target_ty, v: &#vec_ty, out: &mut #vec_ty) -> #r<(), #pv::NetError> {
                self.ggn_vp_in(ws, x, t, v, out)
            }
            fn hessian_into(&self, h: &mut #curv, x: &#in_ty, t: &#target_ty) -> #r<(), #pv::NetError> {
                self.curvature_into(h, x, t)
            }
            fn gauss_newton_into(&self, g: &mut #gn_ty, x: &#in_ty, t: &#target_ty) -> #r<(), #pv::NetError> {
                self.#gn_fill(g, x, t)
            }
            #[allow(unused_variables)]
            fn gradient_gauss_newton_into(&self, scratch: &mut #scratch_ty, g: &mut #gn_ty, x: &#in_ty, t: &#target_ty, grad: &mut #vec_ty) -> #r<#t, #pv::NetError> {
                #grad_gn
            }
        }
    }
}
