//! Code generation for the Gauss-Newton curvature (math.md section 5) and the optimizer
//! interface: `ggn_vp`, the two exact `(G + eps I)^{-1} b` solves (Riccati on the stage
//! blocks, Woodbury on the batch-by-outputs Gram matrix), `<Net>Ggn`, `<Net>Scratch` and the
//! `runtime::optim::Model` impl.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::net::ast::LossKind;
use crate::net::expand::{
    backward_sweep, forward_pass, gradient_backward, last_element, lit, slice, z_of, zeroable_impl,
    Ctx, Step,
};

/// Operation counts of the two Gauss-Newton solves (one curvature + factor + solve), used to
/// pick a net's default. Calibrated on this project's benchmark nets (README "Optimizers"):
/// the Riccati stage work is small dense products and a `(R O) x (R O)` factorisation per
/// stage; Woodbury is `M` adjoints through every stage and one `M x M` Cholesky.
pub(crate) fn ggn_costs(cx: &Ctx) -> (f64, f64) {
    let b = cx.b as f64;
    let m = (cx.net.loss.width.value * cx.b) as f64;
    let mut riccati = 0.0;
    let mut woodbury = m * m * m / 6.0;
    for l in &cx.lays {
        let (i, o) = (l.f.inputs.value as f64, l.f.outputs.value as f64);
        let i1 = i + f64::from(u8::from(l.f.kind.bias()));
        let r = b.min(i1);
        let ro = r * o;
        let count = l.f.count() as f64;
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

pub(crate) fn ggn_items(cx: &Ctx) -> TokenStream {
    let rt = &cx.rt;
    let t = &cx.t;
    let net = &cx.net.ident;
    let vis = &cx.net.vis;
    let bounds = &cx.bounds;
    let n = lit(cx.n);
    let in_ty = &cx.in_ty;
    let target_ty = &cx.target_ty;
    let loss = &cx.loss_ty;
    let ws = &cx.ws_ty;
    let curv = format_ident!("{}Curvature", net);
    let factored = format_ident!("{}Factored", net);
    let ggn = format_ident!("{}Ggn", net);
    let scratch = format_ident!("{}Scratch", net);
    let bl = lit(cx.b);
    let outputs = lit(cx.net.loss.width.value);
    let inputs = lit(cx.net.layers[0].inputs.value);
    let m = lit(cx.net.loss.width.value * cx.b);
    let last_st_early = last_element(cx.lays.last().expect("a layer").f, &quote!(st));
    let last_rec_early = last_element(cx.lays.last().expect("a layer").f, &quote!(ws));
    // The loss-Hessian factor C_n (Hl_n = C_n C_n'): closed forms for the built-in losses, the
    // positive semi-definite part of the block for a custom loss (Gauss-Newton needs Hl PSD).
    let custom = cx.net.loss.kind == LossKind::Custom;
    let factor = |u: TokenStream| match cx.net.loss.kind {
        LossKind::Mse => {
            quote!(<#rt::Mse<#outputs> as #rt::ggn::GgnLoss<#t, #outputs, #bl>>::hess_factor(#u, n))
        }
        LossKind::SoftmaxCrossEntropy => {
            quote!(<#rt::SoftmaxCrossEntropy<#outputs> as #rt::ggn::GgnLoss<#t, #outputs, #bl>>::hess_factor(#u, n))
        }
        LossKind::Custom => quote!(#rt::ggn::psd_factor(&#loss::hess_block(#u, t, n))),
    };
    let factor_u = factor(quote!(&u));
    let factor_z = factor(quote!(&z));
    let factor_last = factor(quote!(&#last_rec_early.out));
    let set_hl = if custom {
        quote! {
            #last_st_early.set_output_hessian(|n| {
                let c = #factor_z;
                c * c.transpose()
            });
        }
    } else {
        quote!(#last_st_early.set_output_hessian(|n| #loss::hess_block(&z, t, n));)
    };
    let gn_beta = if custom {
        quote! {
            let mut beta = #rt::layer::zero_mat::<#t, #outputs, #bl>();
            for n in 0..#bl {
                let c = #factor_last;
                let y = #last_rec_early.y.column(n);
                beta.set_column(n, &(c * c.tr_mul(&y)));
            }
        }
    } else {
        quote!(let beta = #loss::hess_apply(&#last_rec_early.out, t, &#last_rec_early.y);)
    };
    // A custom loss type may be private while the net is public: then the trait impl (whose
    // `Target` names the loss type) would be a private type in a public interface (E0446),
    // so such nets get every inherent item but no `Model` impl.
    let model = !custom || matches!(cx.net.vis, syn::Visibility::Inherited);
    let (cost_r, cost_w) = ggn_costs(cx);
    let woodbury = cost_w <= cost_r;
    let method = if woodbury {
        quote!(Woodbury)
    } else {
        quote!(Riccati)
    };
    let method_doc = format!(
        " The exact Gauss-Newton solve [`Self::ggn_solve_in`] and the optimizers use for this \
         net, chosen at compile time from operation counts (Riccati about {cost_r:.0}, \
         Woodbury about {cost_w:.0} per curvature, factor and solve): {}.",
        if woodbury {
            "`Woodbury` (outputs x batch is small)"
        } else {
            "`Riccati` (outputs x batch is large for this width)"
        }
    );

    let last = cx.lays.last().expect("a layer");
    let last_rec = last_element(last.f, &quote!(ws));
    let grad_fwd = forward_pass(cx, false);
    let tan_fwd = forward_pass(cx, true);
    let vjp = gradient_backward(cx);

    // Tangent-only pass over recorded tapes (Woodbury solve): `J v` into the tapes' `y`.
    let mut tan = Vec::new();
    for l in &cx.lays {
        let name = l.name;
        let v = slice(l, quote!(v), false);
        let (z0, y0) = match &l.prev {
            Some(p) => (quote!(#p.out), quote!(::core::option::Option::Some(&#p.y))),
            None => (quote!(z_in), quote!(::core::option::Option::None)),
        };
        match l.f.array {
            Some(_) => {
                let y_init = match &l.prev {
                    Some(p) => quote!(::core::option::Option::Some(#p.y)),
                    None => quote!(::core::option::Option::None),
                };
                tan.push(quote! {
                    {
                        let mut z = #z0;
                        let mut y = #y_init;
                        for (i, (layer, tape)) in self.#name.iter().zip(ws.#name.iter_mut()).enumerate() {
                            layer.tangent(&z, y.as_ref(), #v, tape);
                            z = tape.out;
                            y = ::core::option::Option::Some(tape.y);
                        }
                    }
                });
            }
            None => tan.push(quote! { self.#name.tangent(&#z0, #y0, #v, &mut ws.#name); }),
        }
    }

    // Gram backward: M adjoints through every stage.
    let gram = backward_sweep(cx, &["r"], |_, l, in_array| {
        let name = l.name;
        let (prelude, z) = z_of(l, in_array);
        let at = if in_array {
            quote!([i])
        } else {
            TokenStream::new()
        };
        Step {
            prelude,
            next: quote!(self.#name #at.gram_backward(#z, &ws.#name #at, &r, &mut g.gram)),
        }
    });

    // Riccati Gauss-Newton curvature: the Hessian's forward half, then every adjoint term
    // dropped (c = d = 0 in every stage).
    let mut cfwd = Vec::new();
    let mut drop_adjoint = Vec::new();
    for l in &cx.lays {
        let name = l.name;
        match l.f.array {
            Some(_) => {
                cfwd.push(quote! {
                    let mut z = z;
                    for (layer, stage) in self.#name.iter().zip(st.#name.iter_mut()) {
                        z = layer.curv_forward(&z, stage);
                    }
                });
                drop_adjoint.push(quote! {
                    for stage in st.#name.iter_mut() {
                        #rt::stage::gram::drop_adjoint_terms(stage);
                    }
                });
            }
            None => {
                cfwd.push(quote! { let z = self.#name.curv_forward(&z, &mut st.#name); });
                drop_adjoint.push(quote! { #rt::stage::gram::drop_adjoint_terms(&mut st.#name); });
            }
        }
    }

    let ggn_doc = format!(
        " Storage of [`{net}`]'s batch-by-outputs (Woodbury) Gauss-Newton solve: the forward \
         record at one batch, the loss-Hessian factors `C_n` (`Hl_n = C_n C_n'`), the \
         `{m} x {m}` Gram matrix `U'U = C'J J'C` and its Cholesky factor at one eps. Fill it \
         with [`{net}::ggn_woodbury_into`]; solve with [`{net}::ggn_woodbury_solve`] (same \
         parameters). `{ggn}::ZERO`, or `tall_skinny::boxed_zeroed::<{ggn}>()`.",
        m = cx.net.loss.width.value * cx.b
    );
    let ggn_zeroable = zeroable_impl(
        rt,
        &ggn,
        &[
            quote!(#ws),
            quote!(#rt::nalgebra::SMatrix<#t, #inputs, #bl>),
            quote!([#rt::nalgebra::SMatrix<#t, #outputs, #outputs>; #bl]),
            quote!(#rt::nalgebra::SMatrix<#t, #m, #m>),
            quote!([#t; #n]),
            quote!(bool),
        ],
    );
    let scratch_doc = format!(
        " Everything [`{net}`]'s optimizer interface (`runtime::optim::Model`) needs: a \
         [`{ws}`], a [`{ggn}`] and a [`{curv}`]. `{scratch}::ZERO` or (large nets) \
         `tall_skinny::boxed_zeroed::<{scratch}>()`."
    );
    let scratch_zeroable = zeroable_impl(rt, &scratch, &[quote!(#ws), quote!(#ggn), quote!(#curv)]);
    let ggn_prepare = if woodbury {
        quote!(self.ggn_woodbury_into(&mut s.ggn, x, t))
    } else {
        quote!(self.ggn_curvature_into(&mut s.curv, x, t))
    };
    let ggn_solve = if woodbury {
        quote!(self.ggn_woodbury_solve(&mut s.ggn, lambda, b, out))
    } else {
        quote! {{
            let mut f = s.curv.factor(lambda)?;
            f.solve_refined(b, out, 2)?;
            Ok(())
        }}
    };

    let model_impl = if model {
        quote! {
        impl #rt::optim::Model for #net #bounds {
            type Scalar = #t;
            type Input = #in_ty;
            type Target = #target_ty;
            type Vector = [#t; #n];
            type Scratch = #scratch;
            const N_PARAMS: usize = #n;
            const GGN_METHOD: #rt::ggn::GgnMethod = #net::GGN_METHOD;

            fn zero_vector() -> [#t; #n] {
                [0.0; #n]
            }
            fn get_params(&self, out: &mut [#t; #n]) {
                self.params(out)
            }
            fn put_params(&mut self, p: &[#t; #n]) -> ::core::result::Result<(), #rt::NetError> {
                self.set_params(p)
            }
            fn loss_in(&self, _s: &mut #scratch, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<#t, #rt::NetError> {
                self.loss(x, t)
            }
            fn gradient_into(&self, s: &mut #scratch, x: &#in_ty, t: &#target_ty, g: &mut [#t; #n]) -> ::core::result::Result<#t, #rt::NetError> {
                self.gradient_in(&mut s.ws, x, t, g)
            }
            fn hvp_into(&self, s: &mut #scratch, x: &#in_ty, t: &#target_ty, v: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::NetError> {
                self.hvp_in(&mut s.ws, x, t, v, out)
            }
            fn ggn_vp_into(&self, s: &mut #scratch, x: &#in_ty, t: &#target_ty, v: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::NetError> {
                self.ggn_vp_in(&mut s.ws, x, t, v, out)
            }
            fn ggn_prepare(&self, s: &mut #scratch, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<(), #rt::NetError> {
                #ggn_prepare
            }
            fn ggn_solve(&self, s: &mut #scratch, lambda: #t, b: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::SolveError> {
                #ggn_solve
            }
            fn hessian_prepare(&self, s: &mut #scratch, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<(), #rt::NetError> {
                self.curvature_into(&mut s.curv, x, t)
            }
            fn hessian_factor(&self, s: &mut #scratch, lambda: #t) -> ::core::result::Result<#rt::Inertia, #rt::SolveError> {
                Ok(s.curv.factor(lambda)?.inertia())
            }
            fn hessian_solve(&self, s: &mut #scratch, b: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::SolveError> {
                let mut f = #factored { curv: &mut s.curv };
                f.solve_refined(b, out, 2)?;
                Ok(())
            }
            fn hessian_apply(&self, s: &mut #scratch, v: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::SolveError> {
                #rt::layer::check_vector(v)?;
                s.curv.stages.apply(0.0, v, out);
                if !#rt::real::all_finite(out) {
                    return Err(#rt::SolveError::NonFiniteResult);
                }
                Ok(())
            }
        }
        }
    } else {
        quote!()
    };
    quote! {
        #[doc = #ggn_doc]
        #[derive(Clone, Debug)]
        #vis struct #ggn {
            /// Forward record at the batch.
            pub ws: #ws,
            /// The batch inputs.
            x: #rt::nalgebra::SMatrix<#t, #inputs, #bl>,
            /// Loss-Hessian factors per sample.
            c: [#rt::nalgebra::SMatrix<#t, #outputs, #outputs>; #bl],
            /// `U'U` (lower triangle).
            gram: #rt::nalgebra::SMatrix<#t, #m, #m>,
            /// Cholesky factor of `eps I + U'U` (lower triangle).
            chol: #rt::nalgebra::SMatrix<#t, #m, #m>,
            /// Refinement scratch.
            residual: [#t; #n],
            /// Refinement scratch.
            correction: [#t; #n],
            /// eps of `chol`.
            eps: #t,
            /// Whether `chol` is current.
            factored: bool,
            /// Whether the storage holds a complete curvature (set by a successful
            /// `ggn_woodbury_into`, cleared when it starts).
            filled: bool,
        }
        #ggn_zeroable
        impl #ggn #bounds {
            /// All zeros; usable in `const` and `static` items.
            pub const ZERO: Self = Self {
                ws: #ws::ZERO,
                x: #rt::layer::zero_mat(),
                c: [#rt::layer::zero_mat(); #bl],
                gram: #rt::layer::zero_mat(),
                chol: #rt::layer::zero_mat(),
                residual: [0.0; #n],
                correction: [0.0; #n],
                eps: 0.0,
                factored: false,
                filled: false,
            };
        }

        #[doc = #scratch_doc]
        #[derive(Clone, Debug)]
        #vis struct #scratch {
            /// Gradient / `hvp` workspace.
            pub ws: #ws,
            /// Woodbury Gauss-Newton storage.
            pub ggn: #ggn,
            /// Stage blocks of the Hessian (or of the Riccati Gauss-Newton curvature).
            pub curv: #curv,
        }
        #scratch_zeroable
        impl #scratch #bounds {
            /// All zeros; usable in `const` and `static` items.
            pub const ZERO: Self = Self { ws: #ws::ZERO, ggn: #ggn::ZERO, curv: #curv::ZERO };
        }

        impl #net #bounds {
            #[doc = #method_doc]
            pub const GGN_METHOD: #rt::ggn::GgnMethod = #rt::ggn::GgnMethod::#method;

            /// The exact Gauss-Newton-vector product `G v = J' Hl J v` of the batch loss (one
            /// forward-tangent pass, the loss Hessian, one backward pass), written to `out`.
            pub fn ggn_vp(&self, x: &#in_ty, t: &#target_ty, v: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::NetError> {
                let mut ws = #ws::ZERO;
                self.ggn_vp_in(&mut ws, x, t, v, out)
            }

            /// [`Self::ggn_vp`] with the caller's scratch `ws`.
            pub fn ggn_vp_in(&self, ws: &mut #ws, x: &#in_ty, t: &#target_ty, v: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::NetError> {
                #rt::layer::check_input(x)?;
                #loss::check(t)?;
                #rt::layer::check_vector(v)?;
                self.check_params()?;
                let z_in = #rt::layer::batch_matrix(x);
                #tan_fwd
                #gn_beta
                let grad = out;
                #vjp
                if !#rt::real::all_finite(grad) {
                    return Err(#rt::NetError::NonFiniteResult);
                }
                Ok(())
            }

            /// The Gauss-Newton curvature as stage blocks (the Hessian's blocks with every
            /// adjoint term dropped; the loss Hessian as terminal value), into the Hessian
            /// solve's storage: then `curv.factor(eps)` factors `G + eps I` (positive definite
            /// for eps > 0; its inertia is all positive) and `solve` / `solve_refined` /
            /// `apply` work on `G + eps I`. The Riccati form of the Gauss-Newton solve.
            pub fn ggn_curvature_into(&self, curv: &mut #curv, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<(), #rt::NetError> {
                curv.filled = false;
                #rt::layer::check_input(x)?;
                #loss::check(t)?;
                self.check_params()?;
                let st = &mut curv.stages;
                let z = #rt::layer::batch_matrix(x);
                #(#cfwd)*
                if !#rt::real::all_finite(z.as_slice()) {
                    return Err(#rt::NetError::NonFiniteResult);
                }
                #set_hl
                #(#drop_adjoint)*
                curv.filled = true;
                Ok(())
            }

            /// The batch-by-outputs (Woodbury) form of the Gauss-Newton curvature at `(x, t)`:
            /// the forward record, the loss-Hessian factors and the Gram matrix `C'J J'C`
            /// (`M` adjoints back through every stage). Then [`Self::ggn_woodbury_solve`].
            pub fn ggn_woodbury_into(&self, g: &mut #ggn, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<(), #rt::NetError> {
                g.filled = false;
                g.factored = false;
                #rt::layer::check_input(x)?;
                #loss::check(t)?;
                self.check_params()?;
                g.x = #rt::layer::batch_matrix(x);
                let z_in = g.x;
                let ws = &mut g.ws;
                #grad_fwd
                let u = #last_rec.out;
                if !#rt::real::all_finite(u.as_slice()) {
                    return Err(#rt::NetError::NonFiniteResult);
                }
                let mut r = #rt::layer::zero_mat::<#t, #outputs, #m>();
                for n in 0..#bl {
                    g.c[n] = #factor_u;
                    for k in 0..#outputs {
                        r.set_column(n * #outputs + k, &g.c[n].column(k));
                    }
                }
                g.gram = #rt::layer::zero_mat();
                #gram
                let _ = r;
                if !#rt::real::all_finite(g.gram.as_slice()) {
                    return Err(#rt::NetError::NonFiniteResult);
                }
                g.filled = true;
                Ok(())
            }

            /// `J v` from the record in `ws` (inputs `z_in`).
            fn ggn_jv(&self, ws: &mut #ws, z_in: &#rt::nalgebra::SMatrix<#t, #inputs, #bl>, v: &[#t; #n]) -> #rt::nalgebra::SMatrix<#t, #outputs, #bl> {
                let z_in = *z_in;
                #(#tan)*
                #last_rec.y
            }

            /// `grad = J' beta` from the record in `ws`.
            fn ggn_jtv(&self, ws: &mut #ws, z_in: &#rt::nalgebra::SMatrix<#t, #inputs, #bl>, beta: #rt::nalgebra::SMatrix<#t, #outputs, #bl>, grad: &mut [#t; #n]) {
                let z_in = *z_in;
                #vjp
            }

            /// `x = (G + eps I)^{-1} b` in the Woodbury form: `(b - J'C (eps I + C'JJ'C)^{-1} C'J b) / eps`.
            #[allow(clippy::too_many_arguments)]
            fn ggn_woodbury_apply_inverse(&self, ws: &mut #ws, z_in: &#rt::nalgebra::SMatrix<#t, #inputs, #bl>, c: &[#rt::nalgebra::SMatrix<#t, #outputs, #outputs>; #bl], chol: &#rt::nalgebra::SMatrix<#t, #m, #m>, eps: #t, b: &[#t; #n], x: &mut [#t; #n]) {
                let y = self.ggn_jv(ws, z_in, b);
                let mut w = #rt::ggn::factor_apply(c, &y, true);
                #rt::linalg::cholesky::cholesky_solve(chol, w.as_mut_slice());
                let beta = #rt::ggn::factor_apply(c, &w, false);
                self.ggn_jtv(ws, z_in, beta, x);
                let inv = 1.0 / eps;
                for (xi, bi) in x.iter_mut().zip(b.iter()) {
                    *xi = (*bi - *xi) * inv;
                }
            }

            /// `out = (G + eps I) v` from the record in `ws`.
            fn ggn_woodbury_apply(&self, ws: &mut #ws, z_in: &#rt::nalgebra::SMatrix<#t, #inputs, #bl>, c: &[#rt::nalgebra::SMatrix<#t, #outputs, #outputs>; #bl], eps: #t, v: &[#t; #n], out: &mut [#t; #n]) {
                let y = self.ggn_jv(ws, z_in, v);
                let cty = #rt::ggn::factor_apply(c, &y, true);
                let beta = #rt::ggn::factor_apply(c, &cty, false);
                self.ggn_jtv(ws, z_in, beta, out);
                for (o, vi) in out.iter_mut().zip(v.iter()) {
                    *o += eps * *vi;
                }
            }

            /// `x = (G + eps I)^{-1} b` with the curvature of [`Self::ggn_woodbury_into`]
            /// (the net's parameters must not have changed since): Cholesky of the
            /// `M x M` matrix `eps I + C'JJ'C` (kept while eps stays the same), one
            /// forward-tangent and one backward pass, then up to 2 steps of iterative
            /// refinement with the exact `(G + eps I) x` (the Woodbury form divides by eps).
            /// eps must be positive (`Singular` otherwise: `G` is singular whenever
            /// parameters outnumber outputs times batch).
            pub fn ggn_woodbury_solve(&self, g: &mut #ggn, eps: #t, b: &[#t; #n], x: &mut [#t; #n]) -> ::core::result::Result<(), #rt::SolveError> {
                if !g.filled {
                    return Err(#rt::SolveError::NoCurvature);
                }
                if !#rt::Real::finite(eps) {
                    return Err(#rt::SolveError::NonFiniteEps);
                }
                if !(eps > 0.0) || !#rt::Real::finite(1.0 / eps) {
                    return Err(#rt::SolveError::Singular { stage: 0 });
                }
                #rt::layer::check_vector(b)?;
                if !g.factored || g.eps != eps {
                    g.chol = g.gram;
                    for q in 0..#m {
                        g.chol[(q, q)] += eps;
                    }
                    g.factored = false;
                    #rt::linalg::cholesky::cholesky_in_place(&mut g.chol).map_err(|_| #rt::SolveError::Singular { stage: 0 })?;
                    g.eps = eps;
                    g.factored = true;
                }
                let #ggn { ws, x: z_in, c, chol, residual, correction, .. } = g;
                self.ggn_woodbury_apply_inverse(ws, z_in, c, chol, eps, b, x);
                let norm = #rt::real::norm::<#t>;
                let b_norm = norm(b);
                if b_norm > 0.0 {
                    let mut res = #t::INFINITY;
                    for step in 0..=2 {
                        self.ggn_woodbury_apply(ws, z_in, c, eps, x, residual);
                        for (r, bi) in residual.iter_mut().zip(b.iter()) {
                            *r = *bi - *r;
                        }
                        let new_res = norm(residual) / b_norm;
                        if step > 0 && new_res > 0.5 * res {
                            if new_res > res {
                                for (xi, d) in x.iter_mut().zip(correction.iter()) {
                                    *xi -= *d;
                                }
                            }
                            break;
                        }
                        res = new_res;
                        if step == 2 || !(res > 4.0 * #t::EPSILON) {
                            break;
                        }
                        self.ggn_woodbury_apply_inverse(ws, z_in, c, chol, eps, residual, correction);
                        for (xi, d) in x.iter_mut().zip(correction.iter()) {
                            *xi += *d;
                        }
                    }
                }
                if !#rt::real::all_finite(x) {
                    return Err(#rt::SolveError::NonFiniteResult);
                }
                Ok(())
            }

            /// One call: `out = (G + eps I)^{-1} b` at the batch `(x, t)` with this net's
            /// [`Self::GGN_METHOD`], exact up to refinement.
            pub fn ggn_solve_in(&self, s: &mut #scratch, x: &#in_ty, t: &#target_ty, eps: #t, b: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::SolveError> {
                let lambda = eps;
                #ggn_prepare?;
                #ggn_solve
            }
        }

        #model_impl

    }
}
