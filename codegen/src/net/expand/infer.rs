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
    let n = lit(net.n_params());
    let jac_doc = " The outputs of one input and the rows of the parameter Jacobian \
        `jac[k] = d u_k(x) / d params` (flat parameter order): one forward pass at batch 1 \
        and one backward pass per output.";
    let cov_doc = " The outputs of one input and their predictive covariance \
        `cov = J (A + eps I)^{-1} J'` under the factorisation `fact` (`J` the parameter \
        Jacobian at `x`; with the Gauss-Newton storage this is the Laplace posterior's): \
        per output one backward pass, one solve and one forward tangent pass; `work` holds \
        two parameter-sized vectors (`tall_skinny::runtime::laplace`).";
    let cov_all_doc = " `predictive_cov` for every query of `xs`: outputs into \
        `outputs`, covariances into `covs` (both of `xs`'s length).";
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

            #[doc = #jac_doc]
            pub fn output_jacobian(&self, x: &[#t; #inputs], jac: &mut [[#t; #n]; #outputs]) -> #r<[#t; #outputs], #pv::NetError> {
                #pv::output_jacobian::<#t, _, #inputs, #outputs, #n>(&self.layers(), x, jac)
            }

            #[doc = #cov_doc]
            pub fn predictive_cov<F>(&self, fact: &mut F, x: &[#t; #inputs], work: &mut [[#t; #n]; 2], cov: &mut [[#t; #outputs]; #outputs]) -> #r<[#t; #outputs], #pv::SolveError>
            where
                F: #pv::Factorization<Scalar = #t, Vector = [#t; #n]> + ?::core::marker::Sized,
            {
                #pv::predictive_cov::<#t, _, F, #inputs, #outputs, #n>(&self.layers(), fact, x, work, cov)
            }

            #[doc = #cov_all_doc]
            pub fn predictive_cov_all<F>(&self, fact: &mut F, xs: &[[#t; #inputs]], work: &mut [[#t; #n]; 2], outputs: &mut [[#t; #outputs]], covs: &mut [[[#t; #outputs]; #outputs]]) -> #r<(), #pv::SolveError>
            where
                F: #pv::Factorization<Scalar = #t, Vector = [#t; #n]> + ?::core::marker::Sized,
            {
                #pv::predictive_cov_all::<#t, _, F, #inputs, #outputs, #n>(&self.layers(), fact, xs, work, outputs, covs)
            }
        }
    }
}
