//! Code generation for the exact `(H + eps I)^{-1} b` solve: the `<Net>Curvature` storage,
//! the curvature pass, the eps-dependent factor sweep and the two-sweep solve.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::expand::{layer_desc, lit, slice_of, zeroable_impl, Ctx, Lay};

/// `#base.field` or `#base.field[N - 1]`: the last stage of layer field `l`.
fn last_stage(l: &Lay, base: &TokenStream) -> TokenStream {
    let name = l.name;
    match l.f.array {
        Some(n) => {
            let k = lit(n.value - 1);
            quote!(#base.#name[#k])
        }
        None => quote!(#base.#name),
    }
}

pub(crate) fn solve_items(cx: &Ctx) -> TokenStream {
    let rt = &cx.rt;
    let t = &cx.t;
    let net = &cx.net.ident;
    let vis = &cx.net.vis;
    let curv = format_ident!("{}Curvature", net);
    let factored = format_ident!("{}Factored", net);
    let n = lit(cx.n);
    let in_ty = &cx.in_ty;
    let target_ty = &cx.target_ty;
    let loss = &cx.loss_ty;

    // The storage struct.
    let mut fields = Vec::new();
    let mut zero = Vec::new();
    let mut tys = Vec::new();
    for l in &cx.lays {
        let name = l.name;
        let st = &l.stage_ty;
        tys.push(st.clone());
        let f = l.f;
        let i1 = f.inputs.value + usize::from(f.kind.bias());
        let r = cx.b.min(i1);
        let doc = format!(
            " Solve data of layer `{name}` ({}): inputs {}, outputs {}, batch {}, inputs with \
             bias {i1}, input rank bound {r}.",
            layer_desc(f),
            f.inputs.value,
            f.outputs.value,
            cx.b
        );
        match f.array {
            Some(len) => {
                let len = lit(len.value);
                fields.push(quote! { #[doc = #doc] pub #name: [#st; #len] });
                zero.push(quote! { #name: [<#st>::ZERO; #len] });
            }
            None => {
                fields.push(quote! { #[doc = #doc] pub #name: #st });
                zero.push(quote! { #name: <#st>::ZERO });
            }
        }
    }
    let curv_doc = format!(
        " The curvature of [`{net}`]'s loss at one batch (every per-stage derivative block; \
         nothing here depends on eps), and storage for its factorisation at one eps.\n\n \
         Fill it with [`{net}::curvature`] (on the stack) or [`{net}::curvature_into`] (caller \
         storage: `{curv}::ZERO` in a `static`, or `tall_skinny::boxed_zeroed::<{curv}>()` on \
         the heap without a stack copy). Then [`{curv}::factor`] runs the eps-dependent sweep \
         (as often as needed, reusing the derivative blocks) and the returned \
         [`{factored}`] solves `(H + eps I) x = b` for any number of right-hand sides."
    );
    let zeroable = zeroable_impl(rt, &curv, &tys);

    // Curvature pass.
    let mut cfwd = Vec::new();
    for l in &cx.lays {
        let name = l.name;
        match l.f.array {
            Some(_) => cfwd.push(quote! {
                let mut z = z;
                for (layer, stage) in self.#name.iter().zip(curv.#name.iter_mut()) {
                    z = layer.curv_forward(&z, stage);
                }
            }),
            None => cfwd.push(quote! {
                let z = self.#name.curv_forward(&z, &mut curv.#name);
            }),
        }
    }
    let last = cx.lays.last().expect("a layer");
    let last_curv = last_stage(last, &quote!(curv));
    let mut cbwd = Vec::new();
    for l in cx.lays.iter().rev() {
        let name = l.name;
        let ty = &l.ty;
        match l.f.array {
            Some(len) => {
                let len = lit(len.value);
                cbwd.push(quote! {
                    let mut beta = beta;
                    for i in (0..#len).rev() {
                        beta = <#ty>::curv_backward(&mut curv.#name[i], &beta);
                    }
                });
            }
            None => cbwd.push(quote! {
                let beta = <#ty>::curv_backward(&mut curv.#name, &beta);
            }),
        }
    }

    // Factor sweep, last stage first.
    let mut fac = Vec::new();
    for (idx, l) in cx.lays.iter().enumerate().rev() {
        let name = l.name;
        let ty = &l.ty;
        let stage0 = lit(l.stage);
        let prev = (idx > 0).then(|| last_stage(&cx.lays[idx - 1], &quote!(self)));
        let first_call = |stage: TokenStream| match &prev {
            Some(p) => quote!(<#ty>::factor_stage(#stage, eps, &mut #p.s)),
            None => quote!(<#ty>::factor_first(#stage, eps)),
        };
        match l.f.array {
            Some(len) => {
                let len = lit(len.value);
                let none_arm = first_call(quote!(stage));
                fac.push(quote! {
                    for i in (0..#len).rev() {
                        let (before, rest) = self.#name.split_at_mut(i);
                        let stage = &mut rest[0];
                        let result = match before.last_mut() {
                            ::core::option::Option::Some(p) => <#ty>::factor_stage(stage, eps, &mut p.s),
                            ::core::option::Option::None => #none_arm,
                        };
                        inertia += result.map_err(|_| #rt::SolveError::Singular { stage: #stage0 + i })?;
                    }
                });
            }
            None => {
                let call = first_call(quote!(&mut self.#name));
                fac.push(quote! {
                    inertia += #call.map_err(|_| #rt::SolveError::Singular { stage: #stage0 })?;
                });
            }
        }
    }

    // Solve: backward sweep for the linear terms, then forward sweep for x.
    let out_w = lit(last.f.outputs.value);
    let bl = lit(cx.b);
    let mut sbwd = Vec::new();
    for l in cx.lays.iter().rev() {
        let name = l.name;
        let ty = &l.ty;
        let g = slice_of(l, quote!(b), false, &quote!(#net));
        match l.f.array {
            Some(len) => {
                let len = lit(len.value);
                sbwd.push(quote! {
                    let mut s = s;
                    for i in (0..#len).rev() {
                        s = <#ty>::solve_backward(&mut c.#name[i], #g, &s, eps);
                    }
                });
            }
            None => sbwd.push(quote! {
                let s = <#ty>::solve_backward(&mut c.#name, #g, &s, eps);
            }),
        }
    }
    let mut sfwd = Vec::new();
    for l in &cx.lays {
        let name = l.name;
        let ty = &l.ty;
        let g = slice_of(l, quote!(b), false, &quote!(#net));
        let o = slice_of(l, quote!(x), true, &quote!(#net));
        match l.f.array {
            Some(len) => {
                let len = lit(len.value);
                sfwd.push(quote! {
                    let mut y = y;
                    for i in 0..#len {
                        y = ::core::option::Option::Some(<#ty>::solve_forward(&c.#name[i], #g, y.as_ref(), eps, #o));
                    }
                });
            }
            None => sfwd.push(quote! {
                let y = ::core::option::Option::Some(<#ty>::solve_forward(&c.#name, #g, y.as_ref(), eps, #o));
            }),
        }
    }

    let solve_doc = format!(
        " Solves `(H + eps I) x = b` for one right-hand side `b` with the factorisation held \
         here: two sweeps over the stages, linear in depth. Call it as often as needed."
    );
    quote! {
        #[doc = #curv_doc]
        #[derive(Clone, Debug)]
        #vis struct #curv {
            #(#fields,)*
            /// eps of the current factorisation.
            eps: #t,
            /// Inertia of `H + eps I` at the current factorisation.
            inertia: #rt::Inertia,
        }
        #zeroable

        impl #curv {
            /// All zeros; usable in `const` and `static` items.
            pub const ZERO: Self = Self {
                #(#zero,)*
                eps: 0.0,
                inertia: #rt::Inertia::ZERO,
            };

            /// Factors `H + eps I` (the eps-dependent Riccati sweep; reuses every derivative
            /// block). Fails with `Singular { stage }` when a stage matrix is singular or
            /// numerically singular at this eps, and with `NonFiniteEps` for a NaN or
            /// infinite eps. Returns a handle that solves for any number of right-hand sides.
            pub fn factor(&mut self, eps: #t) -> ::core::result::Result<#factored<'_>, #rt::SolveError> {
                if !#rt::Real::finite(eps) {
                    return Err(#rt::SolveError::NonFiniteEps);
                }
                let mut inertia = #rt::Inertia::ZERO;
                #(#fac)*
                self.eps = eps;
                self.inertia = inertia;
                Ok(#factored { curv: self })
            }
        }

        #[doc = concat!(" A factored `H + eps I` of [`", stringify!(#net), "`], borrowed from its curvature storage.")]
        #vis struct #factored<'a> {
            /// The storage holding the factorisation.
            curv: &'a mut #curv,
        }

        impl #factored<'_> {
            #[doc = #solve_doc]
            pub fn solve(&mut self, b: &[#t; #n], x: &mut [#t; #n]) -> ::core::result::Result<(), #rt::SolveError> {
                #rt::layer::check_vector(b)?;
                let c = &mut *self.curv;
                let eps = c.eps;
                let s = #rt::layer::zero_mat::<#t, #out_w, #bl>();
                #(#sbwd)*
                let _ = s;
                let y = ::core::option::Option::None;
                #(#sfwd)*
                let _ = y;
                if !#rt::real::all_finite(x) {
                    return Err(#rt::SolveError::NonFiniteResult);
                }
                Ok(())
            }

            /// How many eigenvalues of `H + eps I` are negative, zero and positive (Sylvester's
            /// law of inertia on the stage factorisations).
            pub fn inertia(&self) -> #rt::Inertia {
                self.curv.inertia
            }

            /// The eps of this factorisation.
            pub fn eps(&self) -> #t {
                self.curv.eps
            }
        }

        impl #net {
            /// Computes every per-stage derivative block at the batch `(x, t)` into caller
            /// storage (nothing in it depends on eps). Then `curv.factor(eps)`.
            pub fn curvature_into(&self, curv: &mut #curv, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<(), #rt::NetError> {
                #rt::layer::check_input(x)?;
                #loss::check(t)?;
                self.check_params()?;
                let z = #rt::layer::batch_matrix(x);
                #(#cfwd)*
                let (value, beta) = #loss::gradient(&z, t);
                if !#rt::Real::finite(value) {
                    return Err(#rt::NetError::NonFiniteResult);
                }
                #last_curv.set_output_hessian(|n| #loss::hess_block(&z, n));
                #(#cbwd)*
                let _ = beta;
                Ok(())
            }

            /// [`Self::curvature_into`] returning the storage by value (on the stack: for
            /// small nets; see `size_of::<Curvature>()`).
            pub fn curvature(&self, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<#curv, #rt::NetError> {
                let mut curv = #curv::ZERO;
                self.curvature_into(&mut curv, x, t)?;
                Ok(curv)
            }

            /// One call: `x = (H + eps I)^{-1} b` at the batch `(x_in, t)`, with the curvature
            /// storage on the stack. Returns the inertia of `H + eps I`.
            pub fn hessian_solve(&self, x_in: &#in_ty, t: &#target_ty, eps: #t, b: &[#t; #n], x: &mut [#t; #n]) -> ::core::result::Result<#rt::Inertia, #rt::SolveError> {
                let mut curv = #curv::ZERO;
                self.hessian_solve_in(&mut curv, x_in, t, eps, b, x)
            }

            /// [`Self::hessian_solve`] with caller storage.
            pub fn hessian_solve_in(&self, curv: &mut #curv, x_in: &#in_ty, t: &#target_ty, eps: #t, b: &[#t; #n], x: &mut [#t; #n]) -> ::core::result::Result<#rt::Inertia, #rt::SolveError> {
                self.curvature_into(curv, x_in, t)?;
                let mut f = curv.factor(eps)?;
                f.solve(b, x)?;
                Ok(f.inertia())
            }
        }
    }
}
