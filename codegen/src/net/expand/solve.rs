//! Code generation for the exact `(H + eps I)^{-1} b` solve: the `<Net>Curvature` storage,
//! the curvature pass, the eps-dependent factor sweep and the two-sweep solve.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::net::expand::{
    backward_sweep, last_element, layer_desc, lit, slice_of, zeroable_impl, Ctx, Step,
};

/// `Some(&<prev>.ty)` / `None`: the input tangent of element `i` (or the single stage) of
/// layer field `idx`, read from stages under `base`.
fn y_in(cx: &Ctx, idx: usize, base: &TokenStream, field: &str) -> (TokenStream, TokenStream) {
    let f = format_ident!("{}", field);
    let prev = match idx {
        0 => quote!(::core::option::Option::None),
        _ => {
            let p = last_element(cx.lays[idx - 1].f, base);
            quote!(::core::option::Option::Some(&#p.#f))
        }
    };
    let name = cx.lays[idx].name;
    let elem = quote! {
        if i == 0 { #prev } else { ::core::option::Option::Some(&#base.#name[i - 1].#f) }
    };
    (prev, elem)
}

/// Largest curvature storage (bytes) for which `curvature` and `hessian_solve`, which hold it
/// on the stack, are generated.
pub(crate) const STACK_CURVATURE_LIMIT: usize = 1 << 20;

pub(crate) fn solve_items(cx: &Ctx) -> TokenStream {
    let rt = &cx.rt;
    let bounds = &cx.bounds;
    let t = &cx.t;
    let net = &cx.net.ident;
    let vis = &cx.net.vis;
    let curv = format_ident!("{}Curvature", net);
    let stages = format_ident!("{}Stages", net);
    let factored = format_ident!("{}Factored", net);
    let n = lit(cx.n);
    let in_ty = &cx.in_ty;
    let target_ty = &cx.target_ty;
    let loss = &cx.loss_ty;
    let own = quote!(#net);
    // Bytes of the curvature storage (an estimate of its size_of): the by-value conveniences
    // `curvature` and `hessian_solve` put it on the stack, so they exist only for nets whose
    // storage is small enough for that; larger nets use the `_into` / `_in` forms.
    // Checked (crate::net::check::storage) to be at most isize::MAX, so the unchecked size
    // products in the expansion cannot overflow.
    let curv_bytes = crate::net::check::curvature_bytes(cx.net);
    let on_stack = curv_bytes <= STACK_CURVATURE_LIMIT;
    let stack = if on_stack {
        format!(", or by value on the stack with [`{net}::curvature`]")
    } else {
        String::from(
            "; this net's storage is too large for the stack, so the by-value `curvature` and \
             `hessian_solve` are not generated",
        )
    };

    // The per-stage storage struct.
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
            " Layer `{name}` ({}): inputs {}, outputs {}, batch {}, inputs with bias {i1}, \
             input rank bound {r}.",
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
    let stages_doc = format!(
        " Per-stage solve data of [`{net}`]: derivative blocks, factorisation and scratch, \
         one `Stage` per layer. Part of [`{curv}`]."
    );
    let stages_zeroable = zeroable_impl(rt, &stages, &tys);
    let curv_doc = format!(
        " The curvature of [`{net}`]'s loss at one batch (every per-stage derivative block; \
         nothing here depends on eps), and storage for its factorisation at one eps.\n\n \
         Fill it with [`{net}::curvature_into`] (caller storage: `{curv}::ZERO` in a `static`, \
         or `tall_skinny::boxed_zeroed::<{curv}>()` on the heap without a stack copy){stack}. Then [`{curv}::factor`] runs the eps-dependent sweep \
         (as often as needed, reusing the derivative blocks) and the returned \
         [`{factored}`] solves `(H + eps I) x = b` for any number of right-hand sides. \
         Size: about {curv_bytes} bytes."
    );
    let curv_zeroable = zeroable_impl(
        rt,
        &curv,
        &[
            quote!(#stages),
            quote!([#t; #n]),
            quote!(#rt::Inertia),
            quote!(bool),
        ],
    );

    // Curvature pass.
    let mut cfwd = Vec::new();
    for l in &cx.lays {
        let name = l.name;
        match l.f.array {
            Some(_) => cfwd.push(quote! {
                let mut z = z;
                for (layer, stage) in self.#name.iter().zip(st.#name.iter_mut()) {
                    z = layer.curv_forward(&z, stage);
                }
            }),
            None => cfwd.push(quote! {
                let z = self.#name.curv_forward(&z, &mut st.#name);
            }),
        }
    }
    let last = cx.lays.last().expect("a layer");
    let last_st = last_element(last.f, &quote!(st));
    let last_self = last_element(last.f, &quote!(self));
    let cbwd = backward_sweep(cx, &["beta"], |_, l, in_array| {
        let (name, ty) = (l.name, &l.ty);
        let at = if in_array {
            quote!([i])
        } else {
            TokenStream::new()
        };
        Step {
            prelude: TokenStream::new(),
            next: quote!(<#ty>::curv_backward(&mut st.#name #at, &beta)),
        }
    });

    // Factor sweep, last stage first.
    let mut fac = Vec::new();
    for (idx, l) in cx.lays.iter().enumerate().rev() {
        let name = l.name;
        let ty = &l.ty;
        let stage0 = lit(l.stage);
        let prev = (idx > 0).then(|| last_element(cx.lays[idx - 1].f, &quote!(self)));
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
    let sbwd = backward_sweep(cx, &["s"], |_, l, in_array| {
        let (name, ty) = (l.name, &l.ty);
        let g = slice_of(l, quote!(b), false, &own);
        let at = if in_array {
            quote!([i])
        } else {
            TokenStream::new()
        };
        Step {
            prelude: TokenStream::new(),
            next: quote!(<#ty>::solve_backward(&mut self.#name #at, #g, &s, eps)),
        }
    });
    let abwd = backward_sweep(cx, &["r"], |idx, l, in_array| {
        let (name, ty) = (l.name, &l.ty);
        let v = slice_of(l, quote!(v), false, &own);
        let ao = slice_of(l, quote!(out), true, &own);
        let (prev_ty, elem_ty) = y_in(cx, idx, &quote!(self), "ty");
        if in_array {
            Step {
                prelude: quote! { let y_in = #elem_ty; },
                next: quote!(<#ty>::apply_backward(&self.#name[i], #v, y_in, &r, eps, #ao)),
            }
        } else {
            Step {
                prelude: TokenStream::new(),
                next: quote!(<#ty>::apply_backward(&self.#name, #v, #prev_ty, &r, eps, #ao)),
            }
        }
    });
    let mut sfwd = Vec::new();
    let mut afwd = Vec::new();
    for (idx, l) in cx.lays.iter().enumerate() {
        let name = l.name;
        let ty = &l.ty;
        let g = slice_of(l, quote!(b), false, &own);
        let o = slice_of(l, quote!(x), true, &own);
        let v = slice_of(l, quote!(v), false, &own);
        let (prev_ty, _) = y_in(cx, idx, &quote!(self), "ty");
        match l.f.array {
            Some(len) => {
                let len = lit(len.value);
                sfwd.push(quote! {
                    let mut y = y;
                    for i in 0..#len {
                        y = ::core::option::Option::Some(<#ty>::solve_forward(&self.#name[i], #g, y.as_ref(), eps, #o));
                    }
                });
                let prev_split = match idx {
                    0 => quote!(::core::option::Option::None),
                    _ => {
                        let p = last_element(cx.lays[idx - 1].f, &quote!(self));
                        quote!(::core::option::Option::Some(&#p.ty))
                    }
                };
                afwd.push(quote! {
                    for i in 0..#len {
                        let (before, rest) = self.#name.split_at_mut(i);
                        let y_in = match before.last() {
                            ::core::option::Option::Some(p) => ::core::option::Option::Some(&p.ty),
                            ::core::option::Option::None => #prev_split,
                        };
                        <#ty>::apply_forward(&mut rest[0], #v, y_in);
                    }
                });
            }
            None => {
                sfwd.push(quote! {
                    let y = ::core::option::Option::Some(<#ty>::solve_forward(&self.#name, #g, y.as_ref(), eps, #o));
                });
                afwd.push(quote! {
                    <#ty>::apply_forward(&mut self.#name, #v, #prev_ty);
                });
            }
        }
    }
    let visit = cx.lays.iter().map(|l| {
        let name = l.name;
        match l.f.array {
            Some(_) => quote! { for stage in self.#name.iter() { f(stage); } },
            None => quote! { f(&self.#name); },
        }
    });

    let stack_conveniences = if on_stack {
        quote! {
            /// [`Self::curvature_into`] returning the storage by value (on the stack: for
            /// small nets; see `size_of::<Curvature>()`).
            pub fn curvature(&self, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<#curv, #rt::NetError> {
                let mut curv = #curv::ZERO;
                self.curvature_into(&mut curv, x, t)?;
                Ok(curv)
            }

            /// One call: `x = (H + eps I)^{-1} b` at the batch `(x_in, t)`, with the curvature
            /// storage on the stack, refined (at most 2 steps) to the last digits. Returns the
            /// inertia of `H + eps I`.
            pub fn hessian_solve(&self, x_in: &#in_ty, t: &#target_ty, eps: #t, b: &[#t; #n], x: &mut [#t; #n]) -> ::core::result::Result<#rt::Inertia, #rt::SolveError> {
                let mut curv = #curv::ZERO;
                self.hessian_solve_in(&mut curv, x_in, t, eps, b, x)
            }

        }
    } else {
        quote!()
    };
    quote! {
        #[doc = #stages_doc]
        #[derive(Clone, Debug)]
        #vis struct #stages {
            #(#fields,)*
        }
        #stages_zeroable

        impl #stages #bounds {
            /// All zeros; usable in `const` and `static` items.
            pub const ZERO: Self = Self { #(#zero,)* };

            /// The eps-dependent Riccati sweep, last stage first; returns the inertia of
            /// `H + eps I`.
            pub fn factor(&mut self, eps: #t) -> ::core::result::Result<#rt::Inertia, #rt::SolveError> {
                let mut inertia = #rt::Inertia::ZERO;
                #(#fac)*
                Ok(inertia)
            }

            /// `x = (H + eps I)^{-1} b` with the factorisation at `eps` (no checks): a backward
            /// sweep for the linear terms, then a forward sweep for `x`.
            pub fn solve(&mut self, eps: #t, b: &[#t; #n], x: &mut [#t; #n]) {
                let s = #rt::layer::zero_mat::<#t, #out_w, #bl>();
                #sbwd
                let _ = s;
                let y = ::core::option::Option::None;
                #(#sfwd)*
                let _ = y;
            }

            /// Calls `f` on every stage in order, as a dense view of its derivative blocks
            /// (for baselines and tests; the solve never forms them).
            pub fn for_each_stage(&self, f: &mut dyn FnMut(&dyn #rt::stage::StageView<#t>)) {
                #(#visit)*
            }

            /// `out = (H + eps I) v` from the stored derivative blocks (no network needed).
            pub fn apply(&mut self, eps: #t, v: &[#t; #n], out: &mut [#t; #n]) {
                #(#afwd)*
                let r = #last_self.output_hessian_apply();
                #abwd
                let _ = r;
            }
        }

        #[doc = #curv_doc]
        #[derive(Clone, Debug)]
        #vis struct #curv {
            /// The per-stage data.
            pub stages: #stages,
            /// Refinement scratch: residual.
            residual: [#t; #n],
            /// Refinement scratch: correction.
            correction: [#t; #n],
            /// eps of the current factorisation.
            eps: #t,
            /// Inertia of `H + eps I` at the current factorisation.
            inertia: #rt::Inertia,
            /// Whether the stages hold a complete curvature (set by a successful
            /// `curvature_into`, cleared when it starts); `factor` refuses storage without one.
            filled: bool,
        }
        #curv_zeroable

        impl #curv #bounds {
            /// All zeros; usable in `const` and `static` items.
            pub const ZERO: Self = Self {
                stages: #stages::ZERO,
                residual: [0.0; #n],
                correction: [0.0; #n],
                eps: 0.0,
                inertia: #rt::Inertia::ZERO,
                filled: false,
            };

            /// Factors `H + eps I` (the eps-dependent Riccati sweep; reuses every derivative
            /// block). Fails with `Singular { stage }` when a stage matrix is singular or
            /// numerically singular at this eps, with `NonFiniteEps` for a NaN or infinite
            /// eps, and with `NoCurvature` when the storage was never filled or its last fill
            /// failed. Returns a handle that solves for any number of right-hand sides.
            pub fn factor(&mut self, eps: #t) -> ::core::result::Result<#factored<'_>, #rt::SolveError> {
                if !self.filled {
                    return Err(#rt::SolveError::NoCurvature);
                }
                if !#rt::Real::finite(eps) {
                    return Err(#rt::SolveError::NonFiniteEps);
                }
                self.inertia = self.stages.factor(eps)?;
                self.eps = eps;
                Ok(#factored { curv: self })
            }
        }

        #[doc = concat!(" A factored `H + eps I` of [`", stringify!(#net), "`], borrowed from its curvature storage.")]
        #vis struct #factored<'a> {
            /// The storage holding the factorisation.
            curv: &'a mut #curv,
        }

        impl #factored<'_> #bounds {
            /// Solves `(H + eps I) x = b` for one right-hand side: two sweeps over the stages,
            /// linear in depth. Call it as often as needed. For the last digits at small eps
            /// use [`Self::solve_refined`].
            pub fn solve(&mut self, b: &[#t; #n], x: &mut [#t; #n]) -> ::core::result::Result<(), #rt::SolveError> {
                #rt::layer::check_vector(b)?;
                let c = &mut *self.curv;
                c.stages.solve(c.eps, b, x);
                if !#rt::real::all_finite(x) {
                    return Err(#rt::SolveError::NonFiniteResult);
                }
                Ok(())
            }

            /// [`Self::solve`] followed by iterative refinement with the exact product
            /// `(H + eps I) x` from the stored blocks: at most `max_steps` corrections, stopping
            /// when the residual stops halving. Returns the final relative residual
            /// `|(H + eps I) x - b| / |b|`.
            pub fn solve_refined(&mut self, b: &[#t; #n], x: &mut [#t; #n], max_steps: usize) -> ::core::result::Result<#t, #rt::SolveError> {
                self.solve(b, x)?;
                let c = &mut *self.curv;
                let eps = c.eps;
                let norm = #rt::real::norm::<#t>;
                let b_norm = norm(b);
                if b_norm == 0.0 {
                    return Ok(0.0);
                }
                let mut res = #t::INFINITY;
                for step in 0..=max_steps {
                    c.stages.apply(eps, x, &mut c.residual);
                    for (r, bi) in c.residual.iter_mut().zip(b.iter()) {
                        *r = *bi - *r;
                    }
                    let new_res = norm(&c.residual) / b_norm;
                    if step > 0 && new_res > 0.5 * res {
                        // No longer improving: undo the last correction if it hurt.
                        if new_res > res {
                            for (xi, d) in x.iter_mut().zip(c.correction.iter()) {
                                *xi -= *d;
                            }
                            return Ok(res);
                        }
                        return Ok(new_res);
                    }
                    res = new_res;
                    if step == max_steps || !#rt::Real::finite(res) {
                        break;
                    }
                    c.stages.solve(eps, &c.residual, &mut c.correction);
                    for (xi, d) in x.iter_mut().zip(c.correction.iter()) {
                        *xi += *d;
                    }
                }
                if !#rt::real::all_finite(x) || !#rt::Real::finite(res) {
                    return Err(#rt::SolveError::NonFiniteResult);
                }
                Ok(res)
            }

            /// `out = (H + eps I) v` from the stored derivative blocks: an exact
            /// Hessian-vector product without the network (for residual checks).
            pub fn apply(&mut self, v: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::SolveError> {
                #rt::layer::check_vector(v)?;
                let c = &mut *self.curv;
                c.stages.apply(c.eps, v, out);
                if !#rt::real::all_finite(out) {
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

        impl #net #bounds {
            /// Computes every per-stage derivative block at the batch `(x, t)` into caller
            /// storage (nothing in it depends on eps). Then `curv.factor(eps)`.
            pub fn curvature_into(&self, curv: &mut #curv, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<(), #rt::NetError> {
                curv.filled = false;
                #rt::layer::check_input(x)?;
                #loss::check(t)?;
                self.check_params()?;
                let st = &mut curv.stages;
                let z = #rt::layer::batch_matrix(x);
                #(#cfwd)*
                let (value, beta) = #loss::gradient(&z, t);
                if !#rt::Real::finite(value) {
                    return Err(#rt::NetError::NonFiniteResult);
                }
                #last_st.set_output_hessian(|n| #loss::hess_block(&z, t, n));
                #cbwd
                let _ = beta;
                curv.filled = true;
                Ok(())
            }

            #stack_conveniences

            /// [`Self::hessian_solve`] with caller storage.
            pub fn hessian_solve_in(&self, curv: &mut #curv, x_in: &#in_ty, t: &#target_ty, eps: #t, b: &[#t; #n], x: &mut [#t; #n]) -> ::core::result::Result<#rt::Inertia, #rt::SolveError> {
                self.curvature_into(curv, x_in, t)?;
                let mut f = curv.factor(eps)?;
                f.solve_refined(b, x, 2)?;
                Ok(f.inertia())
            }
        }
    }
}
