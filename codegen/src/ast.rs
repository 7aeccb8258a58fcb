//! The model of a declared network, parsed from the annotated struct.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, GenericArgument, Ident, Item, PathArguments, Type, Visibility};

use crate::attr::{int_lit, Args, Scalar};
use crate::errors::Errors;

/// The activations built into the runtime, by declaration name.
pub const ACTIVATIONS: &[&str] =
    &["Identity", "Tanh", "Sigmoid", "Softplus", "Relu", "Gelu", "Silu", "Sin"];

/// A whole declaration: `#[tall_skinny_net(..)] struct Name { layers.., loss }`.
pub struct Net {
    /// The struct's own attributes (doc comments, derives, ...), passed through.
    pub attrs: Vec<Attribute>,
    /// The struct's visibility.
    pub vis: Visibility,
    /// The struct's name.
    pub ident: Ident,
    /// Samples per batch.
    pub batch: usize,
    /// Scalar type.
    pub scalar: Scalar,
    /// The parameterised layers in order.
    pub layers: Vec<LayerField>,
    /// The loss (always the last field).
    pub loss: LossField,
}

/// Which kind of stage a layer field declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// `Dense<I, O, Act>`: `act(W z + b)`.
    Dense,
    /// `DenseNoBias<I, O, Act>`: `act(W z)`.
    DenseNoBias,
    /// `Residual<W, Act>`: `z + act(W z + b)`.
    Residual,
}

impl LayerKind {
    /// The name used in declarations.
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Dense => "Dense",
            LayerKind::DenseNoBias => "DenseNoBias",
            LayerKind::Residual => "Residual",
        }
    }

    /// Whether the layer has a bias parameter.
    pub fn bias(self) -> bool {
        !matches!(self, LayerKind::DenseNoBias)
    }
}

/// An integer from the declaration, with where it was written.
#[derive(Clone, Copy, Debug)]
pub struct Num {
    /// The value.
    pub value: usize,
    /// Its span, for errors.
    pub span: Span,
}

/// One layer field, possibly an array `[Layer; N]` of identical layers.
pub struct LayerField {
    /// Field attributes (doc comments), passed through.
    pub attrs: Vec<Attribute>,
    /// Field visibility.
    pub vis: Visibility,
    /// Field name.
    pub ident: Ident,
    /// Stage kind.
    pub kind: LayerKind,
    /// Input width.
    pub inputs: Num,
    /// Output width.
    pub outputs: Num,
    /// Activation name (one of [`ACTIVATIONS`]).
    pub act: Ident,
    /// `Some(N)` for `[Layer; N]`.
    pub array: Option<Num>,
    /// The declared type, for error spans.
    pub ty: Type,
}

impl LayerField {
    /// Number of stages this field declares.
    pub fn count(&self) -> usize {
        self.array.map_or(1, |n| n.value)
    }

    /// Parameters of one element: `O * I (+ O)`.
    pub fn params_each(&self) -> usize {
        self.outputs.value * self.inputs.value
            + if self.kind.bias() { self.outputs.value } else { 0 }
    }

    /// Parameters of the whole field.
    pub fn params(&self) -> usize {
        self.params_each() * self.count()
    }
}

/// Which loss ends the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// `Mse<O>`
    Mse,
    /// `SoftmaxCrossEntropy<C>`
    SoftmaxCrossEntropy,
}

impl LossKind {
    /// The name used in declarations.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Mse => "Mse",
            LossKind::SoftmaxCrossEntropy => "SoftmaxCrossEntropy",
        }
    }
}

/// The loss field.
pub struct LossField {
    /// Field attributes, passed through.
    pub attrs: Vec<Attribute>,
    /// Field visibility.
    pub vis: Visibility,
    /// Field name.
    pub ident: Ident,
    /// Which loss.
    pub kind: LossKind,
    /// Its width (outputs or classes).
    pub width: Num,
    /// The declared type, for error spans.
    pub ty: Type,
}

const LAYER_HELP: &str = "the layers are `Dense<I, O, Act>`, `DenseNoBias<I, O, Act>` and \
`Residual<W, Act>` (any of them may be an array `[Layer; N]`), and the last field is the loss: \
`Mse<O>` or `SoftmaxCrossEntropy<C>`";

enum Parsed {
    Layer(LayerField),
    Loss(LossField),
}

impl Net {
    /// Parses the annotated item, reporting every problem found (with those of `args`).
    pub fn from_item(item: &Item, args: Args) -> syn::Result<Net> {
        let Args { batch, scalar, mut errors } = args;
        let s = match item {
            Item::Struct(s) => s,
            Item::Enum(e) => {
                errors.spanned(
                    e.enum_token,
                    "#[tall_skinny_net] goes on a struct with named fields, not an enum: \
                     `struct Net { layer: Dense<2, 8, Tanh>, .., loss: Mse<1> }`",
                );
                return Err(errors.finish().unwrap_err());
            }
            Item::Union(u) => {
                errors.spanned(
                    u.union_token,
                    "#[tall_skinny_net] goes on a struct with named fields, not a union: \
                     `struct Net { layer: Dense<2, 8, Tanh>, .., loss: Mse<1> }`",
                );
                return Err(errors.finish().unwrap_err());
            }
            other => {
                errors.spanned(
                    other,
                    "#[tall_skinny_net] goes on a struct with named fields: \
                     `struct Net { layer: Dense<2, 8, Tanh>, .., loss: Mse<1> }`",
                );
                return Err(errors.finish().unwrap_err());
            }
        };
        if !s.generics.params.is_empty() || s.generics.where_clause.is_some() {
            errors.spanned(
                &s.generics,
                "a network struct cannot be generic: its sizes and scalar are fixed by the \
                 declaration (choose the scalar with `#[tall_skinny_net(scalar = f32)]`)",
            );
        }
        let named = match &s.fields {
            Fields::Named(named) => Some(named),
            Fields::Unnamed(f) => {
                errors.spanned(
                    f,
                    "a network needs named fields, one per layer and the loss last: \
                     `struct Net { inp: Dense<2, 8, Tanh>, loss: Mse<8> }`",
                );
                None
            }
            Fields::Unit => {
                errors.spanned(
                    &s.ident,
                    "a network needs fields, one per layer and the loss last: \
                     `struct Net { inp: Dense<2, 8, Tanh>, loss: Mse<8> }`",
                );
                None
            }
        };
        let mut layers = Vec::new();
        let mut losses: Vec<LossField> = Vec::new();
        let fields: Vec<&syn::Field> = named.map(|n| n.named.iter().collect()).unwrap_or_default();
        let n_fields = fields.len();
        for (pos, field) in fields.into_iter().enumerate() {
            let ident = field.ident.clone().expect("named field");
            match parse_field(field, ident, &mut errors) {
                Some(Parsed::Layer(layer)) => {
                    if !losses.is_empty() {
                        errors.spanned(
                            &layer.ident,
                            format!(
                                "layer `{}` comes after the loss `{}`; the loss must be the last field",
                                layer.ident, losses[0].ident
                            ),
                        );
                    }
                    layers.push(layer)
                }
                Some(Parsed::Loss(loss)) => {
                    if let Some(first) = losses.first() {
                        errors.spanned(
                            &loss.ty,
                            format!(
                                "a network has one loss, and `{}` already is it; remove this one",
                                first.ident
                            ),
                        );
                    } else if pos + 1 != n_fields {
                        errors.spanned(
                            &loss.ty,
                            "the loss must be the last field; move it below every layer",
                        );
                    }
                    losses.push(loss)
                }
                None => {}
            }
        }
        if named.is_some() && losses.is_empty() {
            errors.spanned(
                &s.ident,
                "missing loss: add a last field like `loss: Mse<O>` or \
                 `loss: SoftmaxCrossEntropy<C>`",
            );
        }
        if named.is_some() && layers.is_empty() && n_fields > 0 {
            errors.spanned(
                &s.ident,
                "a network needs at least one layer before the loss, e.g. `out: Dense<2, 1, Identity>`",
            );
        }
        errors.finish()?;
        Ok(Net {
            attrs: s.attrs.clone(),
            vis: s.vis.clone(),
            ident: s.ident.clone(),
            batch,
            scalar,
            layers,
            loss: losses.into_iter().next().expect("checked above"),
        })
    }

    /// Total number of parameterised stages.
    pub fn depth(&self) -> usize {
        self.layers.iter().map(LayerField::count).sum()
    }

    /// Total number of parameters.
    pub fn n_params(&self) -> usize {
        self.layers.iter().map(LayerField::params).sum()
    }
}

fn parse_field(field: &syn::Field, ident: Ident, errors: &mut Errors) -> Option<Parsed> {
    let (elem, array) = match &field.ty {
        Type::Array(arr) => {
            let len = match int_lit(&arr.len) {
                Some(n) => Num { value: n, span: arr.len.span() },
                None => {
                    errors.spanned(
                        &arr.len,
                        "an array of layers needs an integer literal length, e.g. `[Residual<8, Tanh>; 16]`",
                    );
                    return None;
                }
            };
            (&*arr.elem, Some(len))
        }
        Type::Group(g) => (&*g.elem, None),
        other => (other, None),
    };
    let Type::Path(tp) = elem else {
        errors.spanned(&field.ty, format!("expected a layer or a loss here; {LAYER_HELP}"));
        return None;
    };
    if tp.qself.is_some() {
        errors.spanned(&field.ty, format!("expected a layer or a loss here; {LAYER_HELP}"));
        return None;
    }
    let seg = tp.path.segments.last().expect("a path has a segment");
    let name = seg.ident.to_string();
    let args: Vec<&GenericArgument> = match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().collect(),
        PathArguments::None => Vec::new(),
        PathArguments::Parenthesized(_) => {
            errors.spanned(&seg.arguments, "expected `<...>` arguments");
            return None;
        }
    };
    let attrs = field.attrs.clone();
    let vis = field.vis.clone();
    match name.as_str() {
        "Dense" | "DenseNoBias" | "Residual" => {
            let kind = match name.as_str() {
                "Dense" => LayerKind::Dense,
                "DenseNoBias" => LayerKind::DenseNoBias,
                _ => LayerKind::Residual,
            };
            let usage = match kind {
                LayerKind::Residual => "`Residual<W, Act>`, e.g. `Residual<16, Tanh>`",
                LayerKind::Dense => "`Dense<I, O, Act>`, e.g. `Dense<3, 16, Tanh>`",
                LayerKind::DenseNoBias => "`DenseNoBias<I, O, Act>`, e.g. `DenseNoBias<3, 16, Tanh>`",
            };
            let want = if kind == LayerKind::Residual { 2 } else { 3 };
            if kind == LayerKind::Residual
                && args.len() == 3
                && const_arg(args[0]).is_some()
                && const_arg(args[1]).is_some()
            {
                errors.spanned(
                    &seg.arguments,
                    "a residual stage keeps its width: write `Residual<W, Act>` \
                     (z + act(W z + b)); to change the width use `Dense<I, O, Act>`",
                );
                return None;
            }
            if args.len() != want {
                errors.spanned(
                    elem,
                    format!("`{name}` takes {want} arguments: {usage}"),
                );
                return None;
            }
            let mut nums = Vec::new();
            let mut ok = true;
            for arg in &args[..want - 1] {
                match const_arg(arg) {
                    Some(n) => nums.push(n),
                    None => {
                        errors.spanned(
                            arg,
                            format!("widths are integer literals: {usage}"),
                        );
                        ok = false;
                    }
                }
            }
            let act = activation(args[want - 1], errors);
            if !ok {
                return None;
            }
            let act = act?;
            let (inputs, outputs) = if kind == LayerKind::Residual {
                (nums[0], nums[0])
            } else {
                (nums[0], nums[1])
            };
            Some(Parsed::Layer(LayerField {
                attrs,
                vis,
                ident,
                kind,
                inputs,
                outputs,
                act,
                array,
                ty: field.ty.clone(),
            }))
        }
        "Mse" | "SoftmaxCrossEntropy" => {
            let kind = if name == "Mse" { LossKind::Mse } else { LossKind::SoftmaxCrossEntropy };
            let usage = if kind == LossKind::Mse {
                "`Mse<O>` with O the number of outputs, e.g. `Mse<2>`"
            } else {
                "`SoftmaxCrossEntropy<C>` with C the number of classes, e.g. `SoftmaxCrossEntropy<10>`"
            };
            if let Some(n) = array {
                errors.spanned(
                    &field.ty,
                    format!("a loss cannot be an array (found length {}); write {usage}", n.value),
                );
                return None;
            }
            let width = match args.as_slice() {
                [arg] => match const_arg(arg) {
                    Some(n) => n,
                    None => {
                        errors.spanned(arg, format!("the width is an integer literal: {usage}"));
                        return None;
                    }
                },
                _ => {
                    errors.spanned(&field.ty, format!("`{name}` takes one argument: {usage}"));
                    return None;
                }
            };
            Some(Parsed::Loss(LossField { attrs, vis, ident, kind, width, ty: field.ty.clone() }))
        }
        _ => {
            errors.spanned(
                &seg.ident,
                format!("unknown layer or loss `{name}`; {LAYER_HELP}"),
            );
            None
        }
    }
}

fn const_arg(arg: &GenericArgument) -> Option<Num> {
    match arg {
        GenericArgument::Const(expr) => int_lit(expr).map(|value| Num { value, span: expr.span() }),
        _ => None,
    }
}

fn activation(arg: &GenericArgument, errors: &mut Errors) -> Option<Ident> {
    let list = ACTIVATIONS.join(", ");
    let GenericArgument::Type(Type::Path(tp)) = arg else {
        errors.spanned(arg, format!("expected an activation here, one of {list}"));
        return None;
    };
    let seg = tp.path.segments.last().expect("a path has a segment");
    let name = seg.ident.to_string();
    if tp.qself.is_some() || !matches!(seg.arguments, PathArguments::None) {
        errors.spanned(arg, format!("expected an activation here, one of {list}"));
        return None;
    }
    if !ACTIVATIONS.contains(&name.as_str()) {
        let hint = ACTIVATIONS
            .iter()
            .find(|a| a.eq_ignore_ascii_case(&name))
            .map(|a| format!(" (did you mean `{a}`?)"))
            .unwrap_or_default();
        errors.spanned(&seg.ident, format!("unknown activation `{name}`{hint}; one of {list}"));
        return None;
    }
    Some(seg.ident.clone())
}

