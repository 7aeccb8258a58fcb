//! Code generation for a validated [`Net`].
//!
//! The generated code is meant to be read (`cargo expand`): one commented block per layer,
//! named per-layer records (`ws.<field>`), loops over arrays of layers (never unrolled), and
//! fully qualified paths into `::tall_skinny::runtime`.

mod ggn;
mod solve;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::net::ast::{Act, LayerField, LayerKind, LossKind, Net};
use crate::net::attr::Scalar;

/// Everything the code of one layer field needs.
pub(crate) struct Lay<'a> {
    pub(crate) f: &'a LayerField,
    /// `inp`
    pub(crate) name: &'a Ident,
    /// `OFFSET_INP`
    pub(crate) offset: Ident,
    /// `PARAMS_INP` (per element)
    pub(crate) params: Ident,
    /// The runtime type of one element.
    pub(crate) ty: TokenStream,
    /// `ws.inp`-style path of the previous field's last record (`None` for the first).
    pub(crate) prev: Option<TokenStream>,
    /// First stage index of this field.
    pub(crate) stage: usize,
    /// The runtime `Stage` type holding this layer's solve data.
    pub(crate) stage_ty: TokenStream,
}

pub(crate) struct Ctx<'a> {
    pub(crate) net: &'a Net,
    pub(crate) rt: TokenStream,
    pub(crate) t: TokenStream,
    pub(crate) b: usize,
    pub(crate) lays: Vec<Lay<'a>>,
    pub(crate) ws_ty: Ident,
    pub(crate) in_ty: TokenStream,
    pub(crate) out_ty: TokenStream,
    pub(crate) target_ty: TokenStream,
    pub(crate) loss_ty: TokenStream,
    pub(crate) n: usize,
    /// `where Softsign: Activation, Huber<1>: Loss<..>` for the custom activations and
    /// loss of the declaration (empty without them). Every item that names a layer or loss
    /// type carries it: a type that is no activation is then one error on its name in the
    /// declaration, and the items' bodies type-check under the bound (no cascade).
    pub(crate) bounds: TokenStream,
}

/// `#base.field` or `#base.field[N - 1]`: the record of the last stage of layer field `f`.
pub(crate) fn last_element(f: &LayerField, base: &TokenStream) -> TokenStream {
    let name = &f.ident;
    match f.array {
        Some(n) => {
            let k = lit(n.value - 1);
            quote!(#base.#name[#k])
        }
        None => quote!(#base.#name),
    }
}

pub(crate) fn lit(n: usize) -> proc_macro2::Literal {
    proc_macro2::Literal::usize_unsuffixed(n)
}

fn upper(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").unwrap_or(&s).to_uppercase()
}

/// Writes the expansion of `net`.
pub fn expand(net: &Net) -> TokenStream {
    let rt = quote!(::tall_skinny::runtime);
    let t = match net.scalar {
        Scalar::F32 => quote!(f32),
        Scalar::F64 => quote!(f64),
    };
    let b = net.batch;
    let mut lays = Vec::new();
    let mut offset = 0;
    let mut stage = 0;
    let mut prev: Option<TokenStream> = None;
    for f in &net.layers {
        let name = &f.ident;
        let act = match &f.act {
            Act::Builtin(name) => quote!(#rt::#name),
            Act::Custom(path) => quote!(#path),
        };
        let (i, o) = (lit(f.inputs.value), lit(f.outputs.value));
        let ty = match f.kind {
            LayerKind::Dense => quote!(#rt::Dense<#t, #act, #i, #o>),
            LayerKind::DenseNoBias => quote!(#rt::DenseNoBias<#t, #act, #i, #o>),
            LayerKind::Residual => quote!(#rt::Residual<#t, #act, #i>),
        };
        let i1 = f.inputs.value + usize::from(f.kind.bias());
        let r = b.min(i1);
        let stage_ty = {
            let (i1, r, bo, ro) = (
                lit(i1),
                lit(r),
                lit(b * f.outputs.value),
                lit(r * f.outputs.value),
            );
            let (bl, bi) = (lit(b), lit(b * f.inputs.value));
            quote!(#rt::Stage<#t, #i, #o, #bl, #i1, #r, #bo, #bi, #ro>)
        };
        lays.push(Lay {
            stage_ty,
            f,
            name,
            offset: format_ident!("OFFSET_{}", upper(name)),
            params: format_ident!("PARAMS_{}", upper(name)),
            ty,
            prev: prev.clone(),
            stage,
        });
        let _ = offset;
        offset += f.params();
        stage += f.count();
        prev = Some(last_element(f, &quote!(ws)));
    }
    let inputs = lit(net.layers[0].inputs.value);
    let outputs = lit(net.loss.width.value);
    let bl = lit(b);
    let loss_ty = loss_type(net, &rt);
    let target_ty = match net.loss.kind {
        LossKind::Mse => quote!([[#t; #outputs]; #bl]),
        LossKind::SoftmaxCrossEntropy => quote!([usize; #bl]),
        LossKind::Custom => quote!(<#loss_ty as #rt::Loss<#t, #outputs, #bl>>::Target),
    };
    let mut custom: Vec<TokenStream> = Vec::new();
    for f in &net.layers {
        if let Act::Custom(path) = &f.act {
            // Spanned on the declaration's path: a type that is no activation is reported
            // there.
            let span = syn::spanned::Spanned::span(path);
            let b = quote::quote_spanned!(span=> #path: #rt::Activation);
            if !custom.iter().any(|c| c.to_string() == b.to_string()) {
                custom.push(b);
            }
        }
    }
    if net.loss.kind == LossKind::Custom {
        let span = syn::spanned::Spanned::span(&net.loss.ty);
        custom.push(quote::quote_spanned!(span=> #loss_ty: #rt::Loss<#t, #outputs, #bl>));
    }
    let bounds = match custom.first() {
        None => quote!(),
        Some(first) => {
            let span = first
                .clone()
                .into_iter()
                .next()
                .map_or_else(proc_macro2::Span::call_site, |t| t.span());
            quote::quote_spanned!(span=> where #(#custom),*)
        }
    };
    let cx = Ctx {
        bounds,
        net,
        in_ty: quote!([[#t; #inputs]; #bl]),
        out_ty: quote!([[#t; #outputs]; #bl]),
        target_ty,
        loss_ty: quote!(<#loss_ty as #rt::Loss<#t, #outputs, #bl>>),
        rt,
        t,
        b,
        lays,
        ws_ty: format_ident!("{}Workspace", net.ident),
        n: net.n_params(),
    };
    let item = net_struct(&cx);
    let ws = workspace(&cx);
    let inherent = inherent_impl(&cx);
    let solve = self::solve::solve_items(&cx);
    let ggn = self::ggn::ggn_items(&cx);
    quote! {
        #item
        #ws
        #inherent
        #solve
        #ggn
    }
}

/// The type of the loss field, e.g. `::tall_skinny::runtime::Mse<2>` or `Huber<2>`.
fn loss_type(net: &Net, rt: &TokenStream) -> TokenStream {
    let width = lit(net.loss.width.value);
    match (&net.loss.kind, &net.loss.custom) {
        (LossKind::Custom, Some(path)) => quote!(#path<#width>),
        (LossKind::SoftmaxCrossEntropy, _) => quote!(#rt::SoftmaxCrossEntropy<#width>),
        _ => quote!(#rt::Mse<#width>),
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
    let rt = &cx.rt;
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
    let fields = cx.lays.iter().map(|l| {
        let f = l.f;
        let attrs = &f.attrs;
        let vis = &f.vis;
        let name = l.name;
        let ty = &l.ty;
        let doc = format!(" Layer `{}`: `{}`.", name, layer_desc(f));
        let ty = match f.array {
            Some(n) => {
                let n = lit(n.value);
                quote!([#ty; #n])
            }
            None => ty.clone(),
        };
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
    let loss_field_ty = loss_type(net, rt);
    let loss_doc = format!(
        " The loss: `{}<{}>` (no parameters).",
        loss.name(),
        loss.width.value
    );
    let field_tys: Vec<TokenStream> = cx
        .lays
        .iter()
        .map(|l| {
            let ty = &l.ty;
            quote!(#ty)
        })
        .collect();
    let bounds = &cx.bounds;
    let zeroable = if bounds.is_empty() {
        zeroable_impl(rt, ident, &field_tys)
    } else {
        quote! {
            // SAFETY: every field is an array of `Zeroable` runtime types (asserted below), so
            // all-zero bytes are a valid value.
            #[automatically_derived]
            unsafe impl #rt::bytemuck::Zeroable for #ident #bounds {}
            const _: () = {
                fn assert_fields_zeroable() #bounds {
                    fn assert_zeroable<Z: #rt::bytemuck::Zeroable>() {}
                    #(assert_zeroable::<#field_tys>();)*
                }
            };
        }
    };
    quote! {
        #(#attrs)*
        #[doc = #table]
        #[derive(Clone, Debug)]
        #vis struct #ident #bounds {
            #(#fields,)*
            #(#loss_attrs)*
            #[doc = #loss_doc]
            #[allow(dead_code)]
            #loss_vis #loss_name: #loss_field_ty,
        }
        #zeroable
    }
}

pub(crate) fn zeroable_impl(
    rt: &TokenStream,
    ident: &Ident,
    field_tys: &[TokenStream],
) -> TokenStream {
    quote! {
        // SAFETY: every field is an array of `Zeroable` runtime types (asserted below), so
        // all-zero bytes are a valid value.
        #[automatically_derived]
        unsafe impl #rt::bytemuck::Zeroable for #ident {}
        const _: fn() = || {
            fn assert_zeroable<Z: #rt::bytemuck::Zeroable>() {}
            #(assert_zeroable::<#field_tys>();)*
        };
    }
}

fn workspace(cx: &Ctx) -> TokenStream {
    let rt = &cx.rt;
    let t = &cx.t;
    let b = lit(cx.b);
    let net = &cx.net.ident;
    let vis = &cx.net.vis;
    let ws = &cx.ws_ty;
    let mut tys = Vec::new();
    let mut fields = Vec::new();
    let mut zero = Vec::new();
    for l in &cx.lays {
        let name = l.name;
        let o = lit(l.f.outputs.value);
        let tape = quote!(#rt::Tape<#t, #o, #b>);
        tys.push(tape.clone());
        let doc = format!(" Record of layer `{name}`.");
        match l.f.array {
            Some(n) => {
                let n = lit(n.value);
                fields.push(quote! { #[doc = #doc] pub #name: [#tape; #n] });
                zero.push(quote! { #name: [#rt::Tape::ZERO; #n] });
            }
            None => {
                fields.push(quote! { #[doc = #doc] pub #name: #tape });
                zero.push(quote! { #name: #rt::Tape::ZERO });
            }
        }
    }
    let doc = format!(
        " Scratch for [`{net}`]'s `gradient_in` and `hvp_in`: one record per layer, sized at \
         compile time. Put it where it fits: on the stack (`{ws}::ZERO`), in a `static`, or on \
         the heap without a stack copy (`tall_skinny::boxed_zeroed::<{ws}>()`)."
    );
    let zeroable = zeroable_impl(rt, ws, &tys);
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #ws {
            #(#fields,)*
        }
        #zeroable
        impl #ws {
            /// All zeros; usable in `const` and `static` items.
            pub const ZERO: Self = Self { #(#zero,)* };
        }
    }
}

/// `&mut buf[OFFSET..OFFSET + PARAMS]` for a single layer, or the element `i` slice.
pub(crate) fn slice(l: &Lay, buf: TokenStream, mutable: bool) -> TokenStream {
    slice_of(l, buf, mutable, &quote!(Self))
}

/// [`slice`] with the offsets named through `owner` (the net's type) instead of `Self`.
pub(crate) fn slice_of(
    l: &Lay,
    buf: TokenStream,
    mutable: bool,
    owner: &TokenStream,
) -> TokenStream {
    let off = &l.offset;
    let p = &l.params;
    let m = if mutable { quote!(mut) } else { quote!() };
    if l.f.array.is_some() {
        quote!(&#m #buf[#owner::#off + i * #owner::#p..#owner::#off + (i + 1) * #owner::#p])
    } else {
        quote!(&#m #buf[#owner::#off..#owner::#off + #owner::#p])
    }
}

fn inherent_impl(cx: &Ctx) -> TokenStream {
    let bounds = &cx.bounds;
    let rt = &cx.rt;
    let t = &cx.t;
    let net = cx.net;
    let ident = &net.ident;
    let n = lit(cx.n);
    let ws = &cx.ws_ty;
    let in_ty = &cx.in_ty;
    let out_ty = &cx.out_ty;
    let target_ty = &cx.target_ty;
    let loss = &cx.loss_ty;
    let inputs = lit(net.layers[0].inputs.value);
    let outputs = lit(net.loss.width.value);
    let batch = lit(net.batch);
    let depth = lit(net.depth());
    let n_res: usize = net
        .layers
        .iter()
        .filter(|l| l.kind == LayerKind::Residual)
        .map(LayerField::count)
        .sum();

    let mut consts = Vec::new();
    let mut zero = Vec::new();
    let mut init = Vec::new();
    let mut get = Vec::new();
    let mut set = Vec::new();
    let mut check = Vec::new();
    let mut fwd = Vec::new();
    let mut offset = 0;
    for l in &cx.lays {
        let name = l.name;
        let (off, p) = (&l.offset, &l.params);
        let off_doc = format!(" Offset of layer `{name}` in the flat parameter vector.");
        let p_doc = if l.f.array.is_some() {
            format!(" Parameters of each element of layer `{name}`.")
        } else {
            format!(" Parameters of layer `{name}`.")
        };
        let (offv, pv) = (lit(offset), lit(l.f.params_each()));
        consts.push(quote! {
            #[doc = #off_doc]
            pub const #off: usize = #offv;
            #[doc = #p_doc]
            pub const #p: usize = #pv;
        });
        offset += l.f.params();
        let gain = if l.f.kind == LayerKind::Residual {
            1.0 / (n_res as f64).sqrt()
        } else {
            1.0
        };
        let gain = proc_macro2::Literal::f64_suffixed(gain);
        let ty = &l.ty;
        let (rs, ws_) = (slice(l, quote!(out), true), slice(l, quote!(params), false));
        match l.f.array {
            Some(len) => {
                let len = lit(len.value);
                zero.push(quote! { #name: [<#ty>::ZERO; #len] });
                init.push(quote! {
                    for layer in self.#name.iter_mut() {
                        layer.init(&mut rng, #gain);
                    }
                });
                get.push(quote! {
                    for (i, layer) in self.#name.iter().enumerate() {
                        layer.write_params(#rs);
                    }
                });
                set.push(quote! {
                    for (i, layer) in self.#name.iter_mut().enumerate() {
                        layer.read_params(#ws_);
                    }
                });
                check.push(quote! {
                    for (i, layer) in self.#name.iter().enumerate() {
                        if let Some(k) = layer.first_non_finite() {
                            return Err(#rt::NetError::NonFiniteParameter {
                                index: Self::#off + i * Self::#p + k,
                            });
                        }
                    }
                });
                fwd.push(quote! {
                    let mut z = z;
                    for layer in self.#name.iter() {
                        z = layer.forward(&z);
                    }
                });
            }
            None => {
                zero.push(quote! { #name: <#ty>::ZERO });
                init.push(quote! { self.#name.init(&mut rng, #gain); });
                get.push(quote! { self.#name.write_params(#rs); });
                set.push(quote! { self.#name.read_params(#ws_); });
                check.push(quote! {
                    if let Some(k) = self.#name.first_non_finite() {
                        return Err(#rt::NetError::NonFiniteParameter { index: Self::#off + k });
                    }
                });
                fwd.push(quote! { let z = self.#name.forward(&z); });
            }
        }
    }
    let loss_name = &net.loss.ident;
    let width = lit(net.loss.width.value);
    let loss_zero = match (&net.loss.kind, &net.loss.custom) {
        (LossKind::Custom, Some(path)) => quote!(#loss_name: #path::<#width>),
        (LossKind::SoftmaxCrossEntropy, _) => {
            quote!(#loss_name: #rt::SoftmaxCrossEntropy::<#width>)
        }
        _ => quote!(#loss_name: #rt::Mse::<#width>),
    };
    let grad_fwd = forward_pass(cx, false);
    let grad_bwd = gradient_backward(cx);
    let hvp_fwd = forward_pass(cx, true);
    let hvp_bwd = hvp_backward(cx);
    let last = cx.lays.last().expect("at least one layer");
    let last_rec = last_element(last.f, &quote!(ws));
    let target_doc = match net.loss.kind {
        LossKind::Mse => "`t` holds one target row per sample.",
        LossKind::SoftmaxCrossEntropy => "`t` holds one class label per sample.",
        LossKind::Custom => {
            "`t` holds the targets of the loss (one row per sample for `#[loss]` types)."
        }
    };
    let grad_doc = format!(
        " The batch loss and its gradient with respect to the flat parameters, written to \
         `grad`. {target_doc} Uses a [`{ws}`] on the stack (`size_of::<{ws}>()` bytes); \
         see [`Self::gradient_in`] to supply one."
    );
    let grad_in_doc = format!(
        " The batch loss and its gradient (written to `grad`), using the caller's scratch `ws`. \
         {target_doc}"
    );
    let hvp_doc = format!(
        " The exact Hessian-vector product `H v` of the batch loss with respect to the flat \
         parameters, written to `out` (one forward-tangent and one backward pass; no `N x N` \
         matrix). Uses a [`{ws}`] on the stack; see [`Self::hvp_in`]."
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
            pub const ZERO: Self = Self { #(#zero,)* #loss_zero };

            /// A network with deterministic, scaled random weights (LeCun-uniform, residual
            /// branches scaled by `1/sqrt(residual stages)`) and zero biases.
            pub fn init(seed: u64) -> Self {
                let mut net = Self::ZERO;
                net.init_in_place(seed);
                net
            }

            /// [`Self::init`] in place (for networks held in a `static` or a `Box`).
            pub fn init_in_place(&mut self, seed: u64) {
                let mut rng = #rt::SplitMix64::new(seed);
                #(#init)*
            }

            /// Writes the flat parameter vector to `out` (layout in the type's docs).
            pub fn params(&self, out: &mut [#t; #n]) {
                #(#get)*
            }

            /// Sets every parameter from the flat vector `params`; rejects (and leaves the
            /// network unchanged on) a NaN or infinite entry.
            pub fn set_params(&mut self, params: &[#t; #n]) -> ::core::result::Result<(), #rt::NetError> {
                if let Some(index) = params.iter().position(|v| !#rt::Real::finite(*v)) {
                    return Err(#rt::NetError::NonFiniteParameter { index });
                }
                #(#set)*
                Ok(())
            }

            /// `Err` naming the first NaN or infinite parameter, if any.
            pub fn check_params(&self) -> ::core::result::Result<(), #rt::NetError> {
                #(#check)*
                Ok(())
            }

            /// The network outputs (before the loss) for a batch of inputs.
            pub fn forward(&self, x: &#in_ty) -> ::core::result::Result<#out_ty, #rt::NetError> {
                #rt::layer::check_input(x)?;
                self.check_params()?;
                let z = #rt::layer::batch_matrix(x);
                #(#fwd)*
                if !#rt::real::all_finite(z.as_slice()) {
                    return Err(#rt::NetError::NonFiniteResult);
                }
                Ok(z.data.0)
            }

            /// The batch loss.
            pub fn loss(&self, x: &#in_ty, t: &#target_ty) -> ::core::result::Result<#t, #rt::NetError> {
                #loss::check(t)?;
                let u = #rt::nalgebra::SMatrix::from_array_storage(#rt::nalgebra::ArrayStorage(self.forward(x)?));
                let value = #loss::value(&u, t);
                if !#rt::Real::finite(value) {
                    return Err(#rt::NetError::NonFiniteResult);
                }
                Ok(value)
            }

            #[doc = #grad_doc]
            pub fn gradient(&self, x: &#in_ty, t: &#target_ty, grad: &mut [#t; #n]) -> ::core::result::Result<#t, #rt::NetError> {
                let mut ws = #ws::ZERO;
                self.gradient_in(&mut ws, x, t, grad)
            }

            #[doc = #grad_in_doc]
            pub fn gradient_in(&self, ws: &mut #ws, x: &#in_ty, t: &#target_ty, grad: &mut [#t; #n]) -> ::core::result::Result<#t, #rt::NetError> {
                #rt::layer::check_input(x)?;
                #loss::check(t)?;
                self.check_params()?;
                let z_in = #rt::layer::batch_matrix(x);
                #grad_fwd
                let (value, beta) = #loss::gradient(&#last_rec.out, t);
                #grad_bwd
                if !#rt::Real::finite(value) || !#rt::real::all_finite(grad) {
                    return Err(#rt::NetError::NonFiniteResult);
                }
                Ok(value)
            }

            #[doc = #hvp_doc]
            pub fn hvp(&self, x: &#in_ty, t: &#target_ty, v: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::NetError> {
                let mut ws = #ws::ZERO;
                self.hvp_in(&mut ws, x, t, v, out)
            }

            /// [`Self::hvp`] with the caller's scratch `ws`.
            pub fn hvp_in(&self, ws: &mut #ws, x: &#in_ty, t: &#target_ty, v: &[#t; #n], out: &mut [#t; #n]) -> ::core::result::Result<(), #rt::NetError> {
                #rt::layer::check_input(x)?;
                #loss::check(t)?;
                #rt::layer::check_vector(v)?;
                self.check_params()?;
                let z_in = #rt::layer::batch_matrix(x);
                #hvp_fwd
                let u = &#last_rec.out;
                let (_, beta) = #loss::gradient(u, t);
                let r = #loss::hess_apply(u, t, &#last_rec.y);
                #hvp_bwd
                if !#rt::real::all_finite(out) {
                    return Err(#rt::NetError::NonFiniteResult);
                }
                Ok(())
            }
        }
    }
}

/// The recorded forward pass; with `tangent`, also the forward tangent along `v`.
pub(crate) fn forward_pass(cx: &Ctx, tangent: bool) -> TokenStream {
    let mut out = Vec::new();
    for l in &cx.lays {
        let name = l.name;
        let (z0, y0) = match &l.prev {
            Some(p) => (quote!(#p.out), quote!(::core::option::Option::Some(&#p.y))),
            None => (quote!(z_in), quote!(::core::option::Option::None)),
        };
        let v = slice(l, quote!(v), false);
        let second = tangent;
        match l.f.array {
            Some(_) => {
                let body = if tangent {
                    let y_init = match &l.prev {
                        Some(p) => quote!(::core::option::Option::Some(#p.y)),
                        None => quote!(::core::option::Option::None),
                    };
                    quote! {
                        let mut z = #z0;
                        let mut y = #y_init;
                        for (i, (layer, tape)) in self.#name.iter().zip(ws.#name.iter_mut()).enumerate() {
                            layer.forward_tape(&z, tape, #second);
                            layer.tangent(&z, y.as_ref(), #v, tape);
                            z = tape.out;
                            y = ::core::option::Option::Some(tape.y);
                        }
                    }
                } else {
                    quote! {
                        let mut z = #z0;
                        for (layer, tape) in self.#name.iter().zip(ws.#name.iter_mut()) {
                            layer.forward_tape(&z, tape, #second);
                            z = tape.out;
                        }
                    }
                };
                out.push(quote! { { #body } });
            }
            None => {
                let tan = if tangent {
                    quote!(self.#name.tangent(&#z0, #y0, #v, &mut ws.#name);)
                } else {
                    quote!()
                };
                out.push(quote! {
                    self.#name.forward_tape(&#z0, &mut ws.#name, #second);
                    #tan
                });
            }
        }
    }
    quote!(#(#out)*)
}

/// What one layer element does in a backward sweep: `prelude` statements, then `next`, the
/// expression for the new sweep state.
pub(crate) struct Step {
    pub(crate) prelude: TokenStream,
    pub(crate) next: TokenStream,
}

/// The skeleton of every backward sweep (gradient, hvp, curvature, solve, apply, Gram):
/// the layers last first, threading the variables `state` through each element, array
/// elements in reverse inside `for i in (0..len).rev()`. `step(index, layer, in_array)`
/// gives one element's [`Step`] (`i` is in scope when `in_array`).
pub(crate) fn backward_sweep(
    cx: &Ctx,
    state: &[&str],
    mut step: impl FnMut(usize, &Lay, bool) -> Step,
) -> TokenStream {
    let vars: Vec<Ident> = state.iter().map(|v| format_ident!("{v}")).collect();
    let (tuple, rebind) = match &vars[..] {
        [v] => (quote!(#v), quote!(let mut #v = #v;)),
        vs => (quote!((#(#vs),*)), quote!(let (#(mut #vs),*) = (#(#vs),*);)),
    };
    let mut out = Vec::new();
    for (idx, l) in cx.lays.iter().enumerate().rev() {
        match l.f.array {
            Some(len) => {
                let len = lit(len.value);
                let Step { prelude, next } = step(idx, l, true);
                out.push(quote! {
                    #rebind
                    for i in (0..#len).rev() {
                        #prelude
                        #tuple = #next;
                    }
                });
            }
            None => {
                let Step { prelude, next } = step(idx, l, false);
                out.push(quote! {
                    #prelude
                    let #tuple = #next;
                });
            }
        }
    }
    quote!(#(#out)*)
}

/// `&<previous layer's last record>.out`, or `z` for an element after the first of an array.
pub(crate) fn z_of(l: &Lay, in_array: bool) -> (TokenStream, TokenStream) {
    let name = l.name;
    let z0 = match &l.prev {
        Some(p) => quote!(&#p.out),
        None => quote!(&z_in),
    };
    if in_array {
        (
            quote! { let z = if i == 0 { #z0 } else { &ws.#name[i - 1].out }; },
            quote!(z),
        )
    } else {
        (TokenStream::new(), z0)
    }
}

pub(crate) fn gradient_backward(cx: &Ctx) -> TokenStream {
    let sweep = backward_sweep(cx, &["beta"], |_, l, in_array| {
        let name = l.name;
        let g = slice(l, quote!(grad), true);
        let (prelude, z) = z_of(l, in_array);
        let at = if in_array {
            quote!([i])
        } else {
            TokenStream::new()
        };
        Step {
            prelude,
            next: quote!(self.#name #at.backward(#z, &ws.#name #at, &beta, #g)),
        }
    });
    quote! {
        #sweep
        let _ = beta;
    }
}

fn hvp_backward(cx: &Ctx) -> TokenStream {
    let sweep = backward_sweep(cx, &["beta", "r"], |_, l, in_array| {
        let name = l.name;
        let o = slice(l, quote!(out), true);
        let v = slice(l, quote!(v), false);
        let (z0, y0) = match &l.prev {
            Some(p) => (quote!(&#p.out), quote!(::core::option::Option::Some(&#p.y))),
            None => (quote!(&z_in), quote!(::core::option::Option::None)),
        };
        if in_array {
            Step {
                prelude: quote! {
                    let (z, y) = if i == 0 {
                        (#z0, #y0)
                    } else {
                        (&ws.#name[i - 1].out, ::core::option::Option::Some(&ws.#name[i - 1].y))
                    };
                },
                next: quote!(self.#name[i].backward_tangent(z, y, #v, &ws.#name[i], &beta, &r, #o)),
            }
        } else {
            Step {
                prelude: TokenStream::new(),
                next: quote!(self.#name.backward_tangent(#z0, #y0, #v, &ws.#name, &beta, &r, #o)),
            }
        }
    });
    quote! {
        #sweep
        let _ = (beta, r);
    }
}
