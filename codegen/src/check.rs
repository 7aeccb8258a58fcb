//! Validation of a parsed [`Net`]: sizes that are not zero and widths that chain.

use crate::ast::Net;
use crate::errors::Errors;

/// Reports every problem of the declaration at once.
pub fn check(net: &Net) -> syn::Result<()> {
    let mut errors = Errors::default();
    for layer in &net.layers {
        let kind = layer.kind.name();
        if layer.inputs.value == 0 {
            errors.push(syn::Error::new(
                layer.inputs.span,
                format!("layer `{}`: a {kind} layer needs at least 1 input", layer.ident),
            ));
        }
        if layer.outputs.value == 0 && layer.kind != crate::ast::LayerKind::Residual {
            errors.push(syn::Error::new(
                layer.outputs.span,
                format!("layer `{}`: a {kind} layer needs at least 1 output", layer.ident),
            ));
        }
        if let Some(n) = layer.array {
            if n.value == 0 {
                errors.push(syn::Error::new(
                    n.span,
                    format!(
                        "layer `{}`: an array of layers needs at least 1 element; \
                         remove the field for none",
                        layer.ident
                    ),
                ));
            } else if n.value > 1 && layer.inputs.value != layer.outputs.value {
                errors.spanned(
                    &layer.ty,
                    format!(
                        "layer `{}`: the elements of an array feed each other, so each needs as \
                         many inputs as outputs, but this one maps {} to {}; use a `Residual<W, \
                         Act>` array or `Dense<{}, {}, Act>` elements, or a separate field",
                        layer.ident,
                        layer.inputs.value,
                        layer.outputs.value,
                        layer.outputs.value,
                        layer.outputs.value
                    ),
                );
            }
        }
    }
    for pair in net.layers.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.outputs.value != b.inputs.value {
            errors.push(syn::Error::new(
                b.inputs.span,
                format!(
                    "widths do not chain: layer `{}` has {} outputs but layer `{}` takes {} \
                     inputs; make `{}` take {} inputs or `{}` give {} outputs",
                    a.ident,
                    a.outputs.value,
                    b.ident,
                    b.inputs.value,
                    b.ident,
                    a.outputs.value,
                    a.ident,
                    b.inputs.value
                ),
            ));
        }
    }
    if net.loss.width.value == 0 {
        errors.push(syn::Error::new(
            net.loss.width.span,
            format!("loss `{}` needs a width of at least 1", net.loss.ident),
        ));
    }
    if let Some(last) = net.layers.last() {
        if last.outputs.value != net.loss.width.value && net.loss.width.value != 0 {
            errors.push(syn::Error::new(
                net.loss.width.span,
                format!(
                    "widths do not chain: the last layer `{}` has {} outputs but the loss `{}` \
                     takes {}; write `{}<{}>`",
                    last.ident,
                    last.outputs.value,
                    net.loss.ident,
                    net.loss.width.value,
                    net.loss.kind.name(),
                    last.outputs.value
                ),
            ));
        }
    }
    if net.loss.kind == crate::ast::LossKind::SoftmaxCrossEntropy && net.loss.width.value == 1 {
        errors.push(syn::Error::new(
            net.loss.width.span,
            "softmax cross-entropy over 1 class is constant (its loss is always 0); use at least 2 classes",
        ));
    }
    errors.finish()
}
