//! Validation of a parsed [`Net`]: sizes that are not zero, widths that chain, names that do
//! not collide, parameter counts that fit in `usize`.
//!
//! The checks work on [`Slot`]s so that [`crate::net::ast`] can also run them on a declaration
//! that has parse errors elsewhere, and report everything in one build.

use std::collections::HashMap;

use crate::errors::Errors;
use crate::net::ast::{LayerField, LayerKind, LossField, LossKind, Net};

/// One field of a declaration, in the intended order (layers, then the loss).
pub enum Slot<'a> {
    /// A layer that parsed.
    Layer(&'a LayerField),
    /// The loss.
    Loss(&'a LossField),
    /// A field with an error already reported: nothing is assumed about its widths, so the
    /// chain is not checked across it.
    Broken,
}

/// Reports every problem of the declaration at once.
pub fn check(net: &Net) -> syn::Result<()> {
    let mut errors = Errors::default();
    let slots: Vec<Slot> = net
        .layers
        .iter()
        .map(Slot::Layer)
        .chain([Slot::Loss(&net.loss)])
        .collect();
    check_slots(&slots, &mut errors);
    if errors.is_empty() {
        storage(net, &mut errors);
    }
    errors.finish()
}

/// Bytes of a net's curvature storage (`<Net>Curvature`: every per-stage block, plus two
/// parameter-length vectors), an estimate of its `size_of` that bounds every other array the
/// expansion declares (parameters, workspace, stage types). Saturates at `usize::MAX`
/// instead of overflowing, so it is safe on any declaration.
pub fn curvature_bytes(net: &Net) -> usize {
    let sb = scalar_bytes(net);
    let n = net.layers.iter().fold(0usize, |n, l| {
        let params = l
            .outputs
            .value
            .saturating_mul(l.inputs.value)
            .saturating_add(if l.kind.bias() { l.outputs.value } else { 0 });
        n.saturating_add(params.saturating_mul(l.count()))
    });
    net.layers
        .iter()
        .fold(0usize, |acc, l| {
            acc.saturating_add(layer_bytes(l, net.batch, sb))
        })
        .saturating_add(n.saturating_mul(sb).saturating_mul(2))
}

fn scalar_bytes(net: &Net) -> usize {
    match net.scalar {
        crate::net::attr::Scalar::F32 => 4,
        crate::net::attr::Scalar::F64 => 8,
    }
}

/// The curvature storage of one layer field (all its elements), saturating.
fn layer_bytes(l: &LayerField, b: usize, scalar_bytes: usize) -> usize {
    let mul = |x: usize, y: usize| x.saturating_mul(y);
    let (i, o) = (l.inputs.value, l.outputs.value);
    let i1 = i.saturating_add(usize::from(l.kind.bias()));
    let r = b.min(i1);
    let (bo, bi, ro) = (mul(b, o), mul(b, i), mul(r, o));
    let elems = [
        mul(o, i),
        mul(5, mul(o, b)),
        mul(i1, r),
        mul(r, b),
        mul(bo, bo),
        mul(ro, ro),
        mul(bi, ro),
        mul(o, r),
    ]
    .iter()
    .fold(0usize, |acc, &e| acc.saturating_add(e));
    let each = mul(elems, scalar_bytes).saturating_add(mul(ro, 4));
    mul(each, l.count())
}

/// The generated arrays must be representable: no Rust type can exceed `isize::MAX` bytes,
/// and the size arithmetic of the expansion must not overflow. Without this check a huge
/// batch or width (e.g. `batch = 18446744073709551615`) overflowed `usize` inside the macro.
fn storage(net: &Net, errors: &mut Errors) {
    let bytes = curvature_bytes(net);
    if bytes <= isize::MAX as usize {
        return;
    }
    let shown = if bytes == usize::MAX {
        "more than `usize::MAX`".to_string()
    } else {
        format!("{bytes}")
    };
    let msg = format!(
        "the network `{}` is too large to represent: its curvature storage would take {shown} \
         bytes, more than any Rust array can hold (`isize::MAX` bytes); use a smaller `batch` \
         (now {}), fewer stages or narrower layers",
        net.ident, net.batch
    );
    // On the layer with the most storage (the first of equals).
    let sb = scalar_bytes(net);
    let biggest = net
        .layers
        .iter()
        .rev()
        .max_by_key(|l| layer_bytes(l, net.batch, sb));
    match biggest {
        Some(l) => errors.spanned(&l.ty, msg),
        None => errors.spanned(&net.ident, msg),
    }
}

/// Strips `r#` and upper-cases, as the generated `OFFSET_<FIELD>` constants do.
fn upper(ident: &syn::Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").unwrap_or(&s).to_uppercase()
}

fn plain(ident: &syn::Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").unwrap_or(&s).to_string()
}

/// Records every problem of `slots` in `errors`.
pub fn check_slots(slots: &[Slot], errors: &mut Errors) {
    let layer = |i: usize| match slots.get(i) {
        Some(Slot::Layer(l)) => Some(*l),
        _ => None,
    };
    let next_inputs = |i: usize| match slots.get(i + 1) {
        Some(Slot::Layer(l)) if l.inputs.value > 0 => Some(l.inputs.value),
        Some(Slot::Loss(l)) if l.width.value > 0 => Some(l.width.value),
        _ => None,
    };

    names(slots, errors);

    let mut total: Option<usize> = Some(0);
    for (i, slot) in slots.iter().enumerate() {
        let Slot::Layer(l) = slot else { continue };
        let prev = i.checked_sub(1).and_then(layer);
        // The widths a fix should use: the neighbours' where known, else the layer's own.
        let want_in =
            prev.map(|p| p.outputs.value)
                .filter(|&w| w > 0)
                .unwrap_or(if l.inputs.value > 0 {
                    l.inputs.value
                } else {
                    1
                });
        let own_out = if l.kind == LayerKind::Residual {
            0
        } else {
            l.outputs.value
        };
        let want_out = if own_out > 0 {
            own_out
        } else {
            next_inputs(i).unwrap_or(1)
        };
        let kind = l.kind.name();
        if l.kind == LayerKind::Residual {
            if l.inputs.value == 0 {
                let w = prev
                    .map(|p| p.outputs.value)
                    .filter(|&w| w > 0)
                    .or_else(|| next_inputs(i))
                    .unwrap_or(16);
                errors.at(
                    l.inputs.span,
                    format!(
                        "layer `{}`: a `Residual` layer needs a width of at least 1, found 0; \
                         write the width it keeps, e.g. `{}: {}`",
                        l.ident,
                        l.ident,
                        l.decl_with(w, w)
                    ),
                );
            }
        } else {
            if l.inputs.value == 0 {
                let from = match prev {
                    Some(p) if p.outputs.value > 0 => {
                        format!(" to take the {} of `{}`", outputs(p.outputs.value), p.ident)
                    }
                    _ if i == 0 => " (the number of input features per sample)".to_string(),
                    _ => String::new(),
                };
                errors.at(
                    l.inputs.span,
                    format!(
                        "layer `{}`: a `{kind}` layer needs at least 1 input, found 0; write \
                         e.g. `{}: {}`{from}",
                        l.ident,
                        l.ident,
                        l.decl_with(want_in, want_out)
                    ),
                );
            }
            if l.outputs.value == 0 {
                errors.at(
                    l.outputs.span,
                    format!(
                        "layer `{}`: a `{kind}` layer needs at least 1 output, found 0; write \
                         e.g. `{}: {}`",
                        l.ident,
                        l.ident,
                        l.decl_with(want_in, want_out)
                    ),
                );
            }
        }
        if let Some(n) = l.array {
            if n.value == 0 {
                errors.at(
                    n.span,
                    format!(
                        "layer `{}`: an array of layers needs at least 1 element, found 0; \
                         write a length like `[{}; 4]`, or remove the field for none",
                        l.ident,
                        l.elem_with(l.inputs.value, l.outputs.value)
                    ),
                );
            } else if n.value > 1
                && l.inputs.value != l.outputs.value
                && l.inputs.value > 0
                && l.outputs.value > 0
            {
                let (a, b) = (l.inputs.value, l.outputs.value);
                let rest = if n.value == 2 {
                    format!("{}: {}", l.ident, l.elem_with(b, b))
                } else {
                    format!("{}: [{}; {}]", l.ident, l.elem_with(b, b), n.value - 1)
                };
                errors.spanned(
                    &l.ty,
                    format!(
                        "layer `{}`: the elements of an array feed each other, so each must map \
                         a width to itself, but `{}` maps {a} to {b}; give the first element a \
                         field of its own: `{}_in: {}, {rest}`",
                        l.ident,
                        l.elem_with(a, b),
                        plain(&l.ident),
                        l.elem_with(a, b),
                    ),
                );
            }
        }
        let each = l
            .outputs
            .value
            .checked_mul(l.inputs.value)
            .and_then(|w| w.checked_add(if l.kind.bias() { l.outputs.value } else { 0 }))
            .and_then(|p| p.checked_mul(l.count()));
        match each {
            Some(p) => total = total.and_then(|t| t.checked_add(p)),
            None => {
                errors.spanned(
                    &l.ty,
                    format!(
                        "layer `{}` has more parameters than fit in a `usize`; use smaller widths",
                        l.ident
                    ),
                );
                total = Some(0); // reported once, here
            }
        }
    }
    if total.is_none() {
        if let Some(Slot::Layer(l)) = slots.iter().find(|s| matches!(s, Slot::Layer(_))) {
            errors.spanned(
                &l.ty,
                "the network has more parameters in total than fit in a `usize`; use fewer or \
                 smaller layers",
            );
        }
    }

    for (i, pair) in slots.windows(2).enumerate() {
        match (&pair[0], &pair[1]) {
            (Slot::Layer(a), Slot::Layer(b)) => {
                let (out, inp) = (a.outputs.value, b.inputs.value);
                if out == inp || out == 0 || inp == 0 {
                    continue; // zeros are reported above, once
                }
                // A residual, or an array of dense layers, keeps its width: given other
                // inputs it also gives other outputs, which must still chain with what follows.
                let b_keeps = b.kind == LayerKind::Residual || b.count() > 1;
                let b_out = if b_keeps { out } else { b.outputs.value };
                let b_ok = !b_keeps || next_inputs(i + 1).is_none_or(|n| n == out);
                let a_ok = can_change_outputs(a, slots, i);
                let a_in = if a.kind == LayerKind::Residual {
                    inp
                } else {
                    a.inputs.value
                };
                let fix_b = format!("write `{}: {}`", b.ident, b.decl_with(out, b_out));
                let fix_a = format!(
                    "make `{}` give {}: `{}`",
                    a.ident,
                    outputs(inp),
                    a.decl_with(a_in, inp)
                );
                let fix = match (b_ok, a_ok) {
                    (true, true) => format!("{fix_b}, or {fix_a}"),
                    (true, false) => fix_b,
                    (false, true) => fix_a,
                    (false, false) => format!(
                        "add a layer between them, e.g. `{}_in: Dense<{out}, {inp}, Identity>` \
                         before `{}`",
                        plain(&b.ident),
                        b.ident
                    ),
                };
                errors.at(
                    b.inputs.span,
                    format!(
                        "widths do not chain: layer `{}` gives {} but layer `{}` takes {}; {fix}",
                        a.ident,
                        outputs(out),
                        b.ident,
                        inputs(inp),
                    ),
                );
            }
            (Slot::Layer(a), Slot::Loss(loss)) => {
                let (out, w) = (a.outputs.value, loss.width.value);
                if out == w || out == 0 || w == 0 {
                    continue;
                }
                if loss.kind == LossKind::SoftmaxCrossEntropy && out == 1 {
                    continue; // a single score cannot feed a softmax: reported below
                }
                let a_in = if a.kind == LayerKind::Residual {
                    w
                } else {
                    a.inputs.value
                };
                let other = if !can_change_outputs(a, slots, i) {
                    String::new()
                } else {
                    format!(
                        ", or make `{}` give {}: `{}`",
                        a.ident,
                        outputs(w),
                        a.decl_with(a_in, w)
                    )
                };
                let what = match loss.kind {
                    LossKind::Mse | LossKind::Custom => format!("takes {}", outputs(w)),
                    LossKind::SoftmaxCrossEntropy => format!("takes {w} class scores"),
                };
                errors.at(
                    loss.width.span,
                    format!(
                        "widths do not chain: the last layer `{}` gives {} but the loss `{}` \
                         {what}; write `{}: {}`{other}",
                        a.ident,
                        outputs(out),
                        loss.ident,
                        loss.ident,
                        loss.decl_with(out)
                    ),
                );
            }
            _ => {}
        }
    }

    for (i, slot) in slots.iter().enumerate() {
        let Slot::Loss(loss) = slot else { continue };
        let prev = i.checked_sub(1).and_then(layer);
        let kind = loss.name();
        if loss.width.value == 0 {
            let fix = match prev {
                Some(p) if p.outputs.value > 0 => format!(
                    "write `{}: {}` to match the {} of `{}`",
                    loss.ident,
                    loss.decl_with(p.outputs.value),
                    outputs(p.outputs.value),
                    p.ident
                ),
                _ => format!("write e.g. `{}: {}`", loss.ident, loss.decl_with(2)),
            };
            errors.at(
                loss.width.span,
                format!(
                    "loss `{}`: `{kind}` needs a width of at least 1, found 0; {fix}",
                    loss.ident
                ),
            );
        }
        if loss.kind == LossKind::SoftmaxCrossEntropy && loss.width.value == 1 {
            let give = match prev {
                Some(p) if p.kind != LayerKind::Residual => format!(
                    "give `{}` 2 or more outputs (`{}`) and write `{}: SoftmaxCrossEntropy<2>`",
                    p.ident,
                    p.decl_with(p.inputs.value, 2),
                    loss.ident
                ),
                _ => format!("write at least `{}: SoftmaxCrossEntropy<2>`", loss.ident),
            };
            errors.at(
                loss.width.span,
                format!(
                    "loss `{}`: softmax cross-entropy over 1 class is constant (its loss is \
                     always 0); {give}, or use `Mse<1>` for a single output",
                    loss.ident
                ),
            );
        }
    }
}

fn outputs(n: usize) -> String {
    if n == 1 {
        "1 output".into()
    } else {
        format!("{n} outputs")
    }
}

fn inputs(n: usize) -> String {
    if n == 1 {
        "1 input".into()
    } else {
        format!("{n} inputs")
    }
}

/// Whether `a = slots[i]` can be given other outputs without breaking something else:
/// a residual keeps its width, so changing it would break the chain before it (if any); the
/// elements of an array of `Dense` layers feed each other, so they must keep their width.
fn can_change_outputs(a: &LayerField, slots: &[Slot], i: usize) -> bool {
    match a.kind {
        LayerKind::Residual => prev_layer_out(slots, i).is_none(),
        _ => a.count() == 1,
    }
}

/// The outputs of the layer before `slots[i]`, if that is a layer.
fn prev_layer_out(slots: &[Slot], i: usize) -> Option<usize> {
    match i.checked_sub(1).and_then(|j| slots.get(j)) {
        Some(Slot::Layer(l)) => Some(l.outputs.value),
        _ => None,
    }
}

/// Field names: no duplicates, and no two layers whose generated constants
/// (`OFFSET_<FIELD>`, `PARAMS_<FIELD>`) would collide.
fn names(slots: &[Slot], errors: &mut Errors) {
    let mut seen: HashMap<String, &syn::Ident> = HashMap::new();
    let mut seen_upper: HashMap<String, &syn::Ident> = HashMap::new();
    for slot in slots {
        let (ident, is_layer) = match slot {
            Slot::Layer(l) => (&l.ident, true),
            Slot::Loss(l) => (&l.ident, false),
            Slot::Broken => continue,
        };
        if let Some(first) = seen.get(&plain(ident)) {
            errors.spanned(
                ident,
                format!(
                    "duplicate field `{first}`: every layer and the loss need their own name; \
                     rename this one, e.g. `{}_2`",
                    plain(ident)
                ),
            );
            continue;
        }
        seen.insert(plain(ident), ident);
        if is_layer {
            let up = upper(ident);
            if let Some(first) = seen_upper.get(&up) {
                errors.spanned(
                    ident,
                    format!(
                        "fields `{first}` and `{ident}` would both define the constants \
                         `OFFSET_{up}` and `PARAMS_{up}`; rename one of them, e.g. `{}_2`",
                        plain(ident).to_lowercase()
                    ),
                );
                continue;
            }
            seen_upper.insert(up, ident);
        }
    }
}
