//! The storage types of a net (aliases of the runtime's generic storages) and the methods
//! that fill them: the exact Hessian's curvature, the Gauss-Newton forms, the one-call
//! solves.

use proc_macro2::TokenStream;
use quote::quote;

use super::{lit, Ctx};
use crate::net::sizes::{curvature, human, woodbury, workspace};

/// Largest curvature storage (bytes) for which `curvature` and `hessian_solve`, which hold it
/// on the stack, can be called; larger nets get the methods with a bound that explains what
/// to call instead.
pub(crate) const STACK_CURVATURE_LIMIT: usize = 1 << 20;

/// Operation counts of the two Gauss-Newton solves (one curvature + factor + solve), used to
/// pick a net's default. Calibrated on this project's benchmark nets (README "Optimizers"):
/// the Riccati stage work is small dense products and a `(R O) x (R O)` factorisation per
/// stage; Woodbury is `M` adjoints through every stage and one `M x M` Cholesky.
pub(crate) fn ggn_costs(cx: &Ctx) -> (f64, f64) {
    let b = cx.net.batch as f64;
    let m = (cx.net.loss.width.value * cx.net.batch) as f64;
    let mut riccati = 0.0;
    let mut woodbury = m * m * m / 6.0;
    for f in &cx.net.layers {
        let (i, o) = (f.inputs.value as f64, f.outputs.value as f64);
        let i1 = i + f64::from(u8::from(f.kind.bias()));
        let r = b.min(i1);
        let ro = r * o;
        let count = f.count() as f64;
        // factor: Tm build + Bunch-Kaufman + S_prev update and gain; solve: a few products.
        riccati += count
            * (ro * ro * ro / 3.0
                + 2.0 * b * b * o * o * i
                + 2.0 * b * i * ro * ro
                + 4.0 * ro * b * o);
        // Gram: delta'delta (lower half) and W' delta for M adjoints; solve: two passes.
        woodbury += count * (m * m * o / 2.0 + 2.0 * m * o * i + 4.0 * b * o * i);
    }
    (riccati, woodbury)
}

/// Whether the Gauss-Newton solve of this net is the Woodbury form.
pub(crate) fn woodbury_method(cx: &Ctx) -> bool {
    let (r, w) = ggn_costs(cx);
    w <= r
}

pub(crate) fn storage_aliases(cx: &Ctx) -> TokenStream {
    let (pv, t, net) = (&cx.pv, &cx.t, cx.net);
    let (vis, ident, lists) = (&net.vis, &net.ident, &cx.lists);
    let (ws, curv, factored, ggn) = (&cx.ws_ty, &cx.curv_ty, &cx.factored_ty, &cx.ggn_ty);
    let n = lit(net.n_params());
    let (i, o, b, m) = (
        lit(net.layers[0].inputs.value),
        lit(net.loss.width.value),
        lit(net.batch),
        lit(net.loss.width.value * net.batch),
    );
    let where_ = |bytes: usize| {
        if bytes <= STACK_CURVATURE_LIMIT {
            "it fits on the stack (`::ZERO`)"
        } else {
            "too large for the stack: put it in a `static` (`::ZERO`) or on the heap without a \
             stack copy (`tall_skinny::boxed_zeroed`)"
        }
    };
    let ws_doc = format!(
        " Scratch of [`{ident}`]'s `gradient_in`, `hvp_in` and `ggn_vp_in`: the records of one \
         forward pass, one per layer. {}; {}.",
        human(workspace(net)),
        where_(workspace(net))
    );
    let curv_doc = format!(
        " The curvature of [`{ident}`]'s loss at one batch: every per-stage derivative block \
         (nothing here depends on eps) and storage for its factorisation at one eps.\n\n \
         Fill it with [`{ident}::curvature_into`] (the exact Hessian) or \
         [`{ident}::ggn_curvature_into`] (Gauss-Newton); then `factor(eps)` runs the \
         eps-dependent sweep and returns a [`{factored}`] that solves `(H + eps I) x = b` for \
         any number of right-hand sides. {}; {}.",
        human(curvature(net)),
        where_(curvature(net))
    );
    let factored_doc = format!(
        " A factored `H + eps I` (or `G + eps I`) of [`{ident}`], borrowed from its [`{curv}`]."
    );
    let ggn_doc = format!(
        " Storage of [`{ident}`]'s batch-by-outputs (Woodbury) Gauss-Newton solve: the forward \
         record at one batch, a copy of the weights, the loss-Hessian factors and the \
         {m}x{m} Gram matrix. Fill it with [`{ident}::ggn_woodbury_into`]; then \
         `factor(eps)`. {}; {}.",
        human(woodbury(net)),
        where_(woodbury(net)),
        m = net.loss.width.value * net.batch,
    );
    quote! {
        #[doc = #ws_doc]
        #vis type #ws = #pv::Workspace<#lists::Tapes>;
        #[doc = #curv_doc]
        #vis type #curv = #pv::Curvature<#lists::Stages, #n>;
        #[doc = #factored_doc]
        #vis type #factored<'a> = #pv::Factored<'a, #lists::Stages, #n>;
        #[doc = #ggn_doc]
        #vis type #ggn = #pv::Woodbury<#lists::Weights, #lists::Tapes, #t, #i, #o, #b, #m, #n>;
    }
}

pub(crate) fn solve_impl(cx: &Ctx) -> TokenStream {
    let (pv, t, net) = (&cx.pv, &cx.t, cx.net);
    let ident = &net.ident;
    let bounds = &cx.bounds;
    let (in_ty, target_ty, vec_ty) = (&cx.in_ty, &cx.target_ty, &cx.vec_ty);
    let (curv, ggn) = (&cx.curv_ty, &cx.ggn_ty);
    let loss_name = &net.loss.ident;
    let bytes = curvature(net);
    // Nets whose curvature storage is too large for the stack get the by-value forms with
    // a bound no type satisfies: calling them is a compile error that says what to call.
    let too_large = if bytes > STACK_CURVATURE_LIMIT {
        let b = lit(bytes);
        quote!(where for<'a> #ident: #pv::CurvatureTooLargeForTheStack<'a, #b>)
    } else {
        quote!()
    };
    let (cost_r, cost_w) = ggn_costs(cx);
    let woodbury = cost_w <= cost_r;
    let (method, storage, fill) = if woodbury {
        (quote!(Woodbury), quote!(#ggn), quote!(ggn_woodbury_into))
    } else {
        (quote!(Riccati), quote!(#curv), quote!(ggn_curvature_into))
    };
    let method_doc = format!(
        " The exact Gauss-Newton solve [`Self::ggn_solve_in`] and the optimizers use for this \
         net, chosen at compile time from operation counts (Riccati about {cost_r:.0}, \
         Woodbury about {cost_w:.0} per curvature, factor and solve): {}, with storage \
         [`{}`].",
        if woodbury {
            "`Woodbury` (outputs x batch is small)"
        } else {
            "`Riccati` (outputs x batch is large for this width)"
        },
        if woodbury { ggn } else { curv },
    );
    quote! {
        impl #ident #bounds {
            #[doc = #method_doc]
            pub const GGN_METHOD: #pv::GgnMethod = #pv::GgnMethod::#method;

            /// Computes every per-stage derivative block of the exact Hessian at the batch
            /// `(x, t)` into `curv` (nothing in it depends on eps); then `curv.factor(eps)`.
            /// On error `curv` holds no curvature.
            pub fn curvature_into(&self, curv: &mut #curv, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<(), #pv::NetError> {
                #pv::curvature_into(&self.layers(), &self.#loss_name, curv, x, t, false)
            }

            /// [`Self::curvature_into`] returning the storage by value, on the stack.
            pub fn curvature(&self, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<#curv, #pv::NetError> #too_large {
                let mut curv = #curv::ZERO;
                self.curvature_into(&mut curv, x, t)?;
                Ok(curv)
            }

            /// The Gauss-Newton curvature as stage blocks (the Hessian's with every adjoint
            /// term dropped, the loss Hessian as terminal value) into `curv`: then
            /// `curv.factor(eps)` factors `G + eps I` (positive definite for eps > 0). The
            /// Riccati form of the Gauss-Newton solve.
            pub fn ggn_curvature_into(&self, curv: &mut #curv, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<(), #pv::NetError> {
                #pv::curvature_into(&self.layers(), &self.#loss_name, curv, x, t, true)
            }

            /// The batch-by-outputs (Woodbury) form of the Gauss-Newton curvature at `(x, t)`
            /// into `g`; then `g.factor(eps)`. On error `g` holds no curvature.
            pub fn ggn_woodbury_into(&self, g: &mut #ggn, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<(), #pv::NetError> {
                #pv::woodbury_into(&self.layers(), &self.#loss_name, g, x, t)
            }

            /// One call: `out = (H + eps I)^{-1} b` at the batch `(x_in, t)`, with caller
            /// storage, refined (at most 2 steps) to the last digits. Returns the inertia of
            /// `H + eps I`.
            pub fn hessian_solve_in(&self, curv: &mut #curv, x_in: &#in_ty, t: &#target_ty, eps: #t, b: &#vec_ty, out: &mut #vec_ty) -> ::core::result::Result<#pv::Inertia, #pv::SolveError> {
                #pv::hessian_solve(&self.layers(), &self.#loss_name, curv, x_in, t, eps, b, out)
            }

            /// [`Self::hessian_solve_in`] with the storage on the stack.
            pub fn hessian_solve(&self, x_in: &#in_ty, t: &#target_ty, eps: #t, b: &#vec_ty, out: &mut #vec_ty) -> ::core::result::Result<#pv::Inertia, #pv::SolveError> #too_large {
                let mut curv = #curv::ZERO;
                self.hessian_solve_in(&mut curv, x_in, t, eps, b, out)
            }

            /// One call: `out = (G + eps I)^{-1} b` at the batch `(x_in, t)` with this net's
            /// [`Self::GGN_METHOD`], refined (at most 2 steps). Returns the refinement's
            /// relative residual.
            pub fn ggn_solve_in(&self, g: &mut #storage, x_in: &#in_ty, t: &#target_ty, eps: #t, b: &#vec_ty, out: &mut #vec_ty) -> ::core::result::Result<#pv::Refinement<#t>, #pv::SolveError> {
                self.#fill(g, x_in, t)?;
                g.factor(eps)?.solve_refined(b, out, 2)
            }
        }
    }
}
