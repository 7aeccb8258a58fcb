//! Batch-independent evaluation: `forward_one`, `forward_all`, `loss_all` and `evaluate`,
//! each a call into the runtime's `eval` module with the list of the layers.

use proc_macro2::TokenStream;
use quote::quote;

use super::{lit, Ctx};
use crate::net::ast::LossKind;

pub(crate) fn infer_impl(cx: &Ctx) -> TokenStream {
    let (pv, t, net) = (&cx.pv, &cx.t, cx.net);
    let ident = &net.ident;
    let bounds = &cx.bounds;
    let (inputs, outputs, batch) = (
        lit(net.layers[0].inputs.value),
        lit(net.loss.width.value),
        net.batch,
    );
    let loss_name = &net.loss.ident;
    let r = quote!(::core::result::Result);
    let (sample_ty, eval_fn, target_doc) = match net.loss.kind {
        LossKind::SoftmaxCrossEntropy => (
            quote!(usize),
            quote!(evaluate_labels),
            "`ts` holds one class label per sample",
        ),
        LossKind::Mse | LossKind::Custom => (
            quote!([#t; #outputs]),
            quote!(evaluate_rows),
            "`ts` holds one target row per sample",
        ),
    };
    let metric_doc = match net.loss.kind {
        LossKind::SoftmaxCrossEntropy => {
            "the loss and the number of samples whose largest output is at their label \
             (`correct`, `accuracy()`)"
        }
        LossKind::Mse | LossKind::Custom => {
            "the loss and the mean squared error over every output entry (`mse`, `rmse()`)"
        }
    };
    let one_doc = format!(
        " The outputs of one sample: the layer chain run on that sample alone (batch 1, no \
         padded batch of {batch}), whatever batch the net is declared at."
    );
    let all_doc = format!(
        " The outputs of every sample of `xs` (any length, also zero) into `out`, which must \
         have the same length (`NetError::LengthMismatch` otherwise). Blocks of {batch} \
         samples run as one batch, the remainder one sample at a time; no padding."
    );
    let loss_doc = format!(
        " The loss over a whole data set of any non-zero length ({target_doc}), normalised \
         as the batch loss: the mean of the per-sample losses (the batch loss when the data \
         set is one batch of {batch}). Exact: no padding."
    );
    let eval_doc = format!(
        " Exact metrics over a whole data set of any non-zero length ({target_doc}): \
         {metric_doc}."
    );
    let batch = lit(batch);
    quote! {
        impl #ident #bounds {
            #[doc = #one_doc]
            pub fn forward_one(&self, x: &[#t; #inputs]) -> #r<[#t; #outputs], #pv::NetError> {
                #pv::forward_one::<#t, _, #batch, #inputs, #outputs>(&self.layers(), x)
            }

            #[doc = #all_doc]
            pub fn forward_all(&self, xs: &[[#t; #inputs]], out: &mut [[#t; #outputs]]) -> #r<(), #pv::NetError> {
                #pv::forward_all::<#t, _, #batch, #inputs, #outputs>(&self.layers(), xs, out)
            }

            #[doc = #loss_doc]
            pub fn loss_all(&self, xs: &[[#t; #inputs]], ts: &[#sample_ty]) -> #r<#t, #pv::NetError> {
                #pv::loss_all::<#t, _, _, _, #batch, #inputs, #outputs>(&self.layers(), &self.#loss_name, xs, ts)
            }

            #[doc = #eval_doc]
            pub fn evaluate(&self, xs: &[[#t; #inputs]], ts: &[#sample_ty]) -> #r<#pv::Evaluation<#t>, #pv::NetError> {
                #pv::#eval_fn::<#t, _, _, #batch, #inputs, #outputs>(&self.layers(), &self.#loss_name, xs, ts)
            }
        }
    }
}
