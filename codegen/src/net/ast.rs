//! The model of a declared network, parsed from the annotated struct.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, GenericArgument, Ident, Item, PathArguments, Type, Visibility};

use crate::errors::Errors;
use crate::net::attr::{int_lit, Args, Scalar};
use crate::net::check::{check_slots, Slot};

/// The activations built into the runtime, by declaration name.
pub const ACTIVATIONS: &[&str] = &[
    "Identity", "Tanh", "Sigmoid", "Softplus", "Relu", "Gelu", "Silu", "Sin",
];

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

/// The activation of a layer.
#[derive(Clone, Debug)]
pub enum Act {
    /// One of [`ACTIVATIONS`], from the runtime.
    Builtin(Ident),
    /// A type of the user's scope, by its path as written (made by `#[activation]`, or any
    /// type implementing the runtime's `Activation`).
    Custom(syn::Path),
}

impl core::fmt::Display for Act {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Act::Builtin(i) => write!(f, "{i}"),
            Act::Custom(p) => write!(f, "{}", tidy(p)),
        }
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
    /// The activation.
    pub act: Act,
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
            + if self.kind.bias() {
                self.outputs.value
            } else {
                0
            }
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
    /// A loss type of the user's scope, `Name<O>` (made by `#[loss]`, or any type
    /// implementing the runtime's `Loss`); its path is [`LossField::custom`].
    Custom,
}

impl LossKind {
    /// The name used in declarations.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Mse => "Mse",
            LossKind::SoftmaxCrossEntropy => "SoftmaxCrossEntropy",
            LossKind::Custom => "custom loss",
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
    /// For [`LossKind::Custom`], the type's path without its `<O>` argument.
    pub custom: Option<syn::Path>,
    /// The declared type, for error spans.
    pub ty: Type,
}

const LAYER_HELP: &str = "one of the layers `Dense<I, O, Act>`, `DenseNoBias<I, O, Act>`, \
`Residual<W, Act>` (each may be an array `[Layer; N]`) or, as the last field, one of the losses \
`Mse<O>`, `SoftmaxCrossEntropy<C>`";

/// Every name a field type may have, for "did you mean" hints.
const TYPE_NAMES: &[&str] = &[
    "Dense",
    "DenseNoBias",
    "Residual",
    "Mse",
    "SoftmaxCrossEntropy",
];

/// Names from other libraries, and what to write here instead.
const TYPE_ALIASES: &[(&str, &str)] = &[
    ("Linear", "Dense"),
    ("FullyConnected", "Dense"),
    ("Fc", "Dense"),
    ("Skip", "Residual"),
    ("ResBlock", "Residual"),
    ("MeanSquaredError", "Mse"),
    ("MSELoss", "Mse"),
    ("CrossEntropyLoss", "SoftmaxCrossEntropy"),
    ("Softmax", "SoftmaxCrossEntropy"),
    ("CrossEntropy", "SoftmaxCrossEntropy"),
];

/// Activation names from other libraries, and what to write here instead.
const ACTIVATION_ALIASES: &[(&str, &str)] = &[
    ("Linear", "Identity"),
    ("None", "Identity"),
    ("Id", "Identity"),
    ("Swish", "Silu"),
    ("Logistic", "Sigmoid"),
    ("Sine", "Sin"),
];

fn suggest(
    name: &str,
    aliases: &[(&str, &'static str)],
    names: &[&'static str],
) -> Option<&'static str> {
    match aliases.iter().find(|(a, _)| a.eq_ignore_ascii_case(name)) {
        Some((_, to)) => Some(to),
        None => crate::errors::did_you_mean(name, names),
    }
}

/// A field as parsed: a layer, the loss, or something already reported as an error.
enum Parsed {
    Layer(LayerField),
    Loss(LossField),
    Broken,
}

/// A declaration example to show in errors about the struct as a whole.
const STRUCT_EXAMPLE: &str =
    "`struct Net { inp: Dense<2, 8, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<1> }`";

/// `Dense < 2 , 8 , Tanh >` (token spacing) as `Dense<2, 8, Tanh>`.
pub(crate) fn tidy(tokens: &impl quote::ToTokens) -> String {
    let s = tokens.to_token_stream().to_string();
    s.replace(" < ", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" ;", ";")
        .replace("[ ", "[")
        .replace(" ]", "]")
        .replace(" :: ", "::")
        .replace(" : ", ": ")
        .replace(":: ", "::")
        .replace("& ", "&")
}

impl LayerField {
    /// How this field would be declared with other widths, e.g. `[Residual<8, Tanh>; 3]`.
    pub fn decl_with(&self, inputs: usize, outputs: usize) -> String {
        let one = self.elem_with(inputs, outputs);
        match self.array {
            Some(n) => format!("[{one}; {}]", n.value),
            None => one,
        }
    }

    /// One element with other widths, e.g. `Dense<4, 8, Tanh>`.
    pub fn elem_with(&self, inputs: usize, outputs: usize) -> String {
        let act = &self.act;
        match self.kind {
            LayerKind::Residual => format!("Residual<{inputs}, {act}>"),
            k => format!("{}<{inputs}, {outputs}, {act}>", k.name()),
        }
    }
}

impl LossField {
    /// How this loss would be declared with another width, e.g. `Mse<2>`.
    pub fn decl_with(&self, width: usize) -> String {
        format!("{}<{width}>", self.name())
    }

    /// The loss's name as declared (`Mse`, `Huber`, `losses::Huber`).
    pub fn name(&self) -> String {
        match &self.custom {
            Some(p) => tidy(p),
            None => self.kind.name().to_string(),
        }
    }
}

impl Net {
    /// Parses the annotated item, reporting every problem found (with those of `args`):
    /// parse errors of every field, then the checks of [`crate::net::check`] on the fields that
    /// did parse, so a declaration with several mistakes shows them all in one build.
    pub fn from_item(item: &Item, args: Args) -> syn::Result<Net> {
        let Args {
            batch,
            scalar,
            mut errors,
        } = args;
        let s = match item {
            Item::Struct(s) => s,
            Item::Enum(e) => {
                errors.spanned(
                    e.enum_token,
                    format!(
                        "an enum cannot be a network; write a struct with named fields instead, \
                         one per layer and the loss last, e.g. {STRUCT_EXAMPLE}"
                    ),
                );
                return Err(errors.finish().unwrap_err());
            }
            Item::Union(u) => {
                errors.spanned(
                    u.union_token,
                    format!(
                        "a union cannot be a network; write a struct with named fields instead, \
                         one per layer and the loss last, e.g. {STRUCT_EXAMPLE}"
                    ),
                );
                return Err(errors.finish().unwrap_err());
            }
            other => {
                use quote::quote;
                let (what, span) = match other {
                    Item::Fn(f) => {
                        let (k, i) = (&f.sig.fn_token, &f.sig.ident);
                        ("a function", quote!(#k #i))
                    }
                    Item::Type(t) => {
                        let (k, i) = (&t.type_token, &t.ident);
                        ("a type alias", quote!(#k #i))
                    }
                    Item::Trait(t) => {
                        let (k, i) = (&t.trait_token, &t.ident);
                        ("a trait", quote!(#k #i))
                    }
                    Item::Impl(i) => {
                        let k = &i.impl_token;
                        ("an impl block", quote!(#k))
                    }
                    Item::Mod(m) => {
                        let (k, i) = (&m.mod_token, &m.ident);
                        ("a module", quote!(#k #i))
                    }
                    _ => ("this item", quote!(#other)),
                };
                errors.spanned(
                    span,
                    format!(
                        "{what} cannot be a network; #[tall_skinny_net] goes on a struct, so \
                         write one with named fields, one per layer and the loss last, e.g. \
                         {STRUCT_EXAMPLE}"
                    ),
                );
                return Err(errors.finish().unwrap_err());
            }
        };
        if !s.generics.params.is_empty() {
            errors.spanned(
                &s.generics,
                format!(
                    "a network struct cannot be generic: its sizes are fixed by the declaration \
                     and its scalar by the attribute; remove `{}` (for an `f32` network write \
                     `#[tall_skinny_net(scalar = f32)]`)",
                    tidy(&s.generics)
                ),
            );
        }
        if let Some(w) = &s.generics.where_clause {
            errors.spanned(
                w,
                "a network struct cannot have a `where` clause: it is not generic; remove it",
            );
        }
        let named = match &s.fields {
            Fields::Named(named) => Some(named),
            Fields::Unnamed(f) => {
                let n = f.unnamed.len();
                let fields: Vec<String> = f
                    .unnamed
                    .iter()
                    .enumerate()
                    .map(|(i, field)| {
                        let name = if i + 1 == n && n > 1 {
                            "loss".to_string()
                        } else {
                            format!("layer{i}")
                        };
                        format!("{name}: {}", tidy(&field.ty))
                    })
                    .collect();
                let rewrite = if fields.is_empty() {
                    STRUCT_EXAMPLE.to_string()
                } else {
                    format!("`struct {} {{ {} }}`", s.ident, fields.join(", "))
                };
                errors.spanned(
                    f,
                    format!(
                        "a network needs named fields, one per layer and the loss last, not a \
                         tuple struct; write {rewrite}"
                    ),
                );
                None
            }
            Fields::Unit => {
                errors.spanned(
                    &s.ident,
                    format!(
                        "a network needs fields, one per layer and the loss last; write e.g. \
                         {STRUCT_EXAMPLE}"
                    ),
                );
                None
            }
        };
        let Some(named) = named else {
            return Err(errors.finish().unwrap_err());
        };
        if named.named.is_empty() {
            errors.push(syn::Error::new(
                named.brace_token.span.join(),
                format!(
                    "a network needs at least one layer and a loss, the loss last; write e.g. \
                     {STRUCT_EXAMPLE}"
                ),
            ));
            return Err(errors.finish().unwrap_err());
        }

        let fields: Vec<&syn::Field> = named.named.iter().collect();
        let n_fields = fields.len();
        let parsed: Vec<Parsed> = fields
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let ident = field.ident.clone().expect("named field");
                parse_field(field, ident, i + 1 == n_fields, &mut errors)
            })
            .collect();
        let broken = parsed.iter().any(|p| matches!(p, Parsed::Broken));
        let loss_pos: Vec<usize> = parsed
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p, Parsed::Loss(_)))
            .map(|(i, _)| i)
            .collect();
        let layer_names = |range: core::ops::Range<usize>| -> Vec<&Ident> {
            parsed[range]
                .iter()
                .filter_map(|p| match p {
                    Parsed::Layer(l) => Some(&l.ident),
                    _ => None,
                })
                .collect()
        };
        let mut misplaced = false;
        if let Some(&first) = loss_pos.first() {
            let Parsed::Loss(loss) = &parsed[first] else {
                unreachable!()
            };
            let after = layer_names(first + 1..parsed.len());
            if let Some(last) = after.last() {
                misplaced = true;
                let list = after.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>();
                let (which, verb) = match list.split_last() {
                    Some((one, [])) => (format!("layer {one}"), "comes"),
                    Some((last, rest)) => {
                        (format!("layers {} and {last}", rest.join(", ")), "come")
                    }
                    None => unreachable!("at least one layer"),
                };
                errors.spanned(
                    fields[first],
                    format!(
                        "the loss must be the last field, but {which} {verb} after the loss `{}`; \
                         move `{}: {}` below `{last}`",
                        loss.ident,
                        loss.ident,
                        tidy(&loss.ty)
                    ),
                );
            }
            for &extra in &loss_pos[1..] {
                let Parsed::Loss(dup) = &parsed[extra] else {
                    unreachable!()
                };
                errors.spanned(
                    fields[extra],
                    format!(
                        "a network has one loss, and `{}: {}` already is it; remove `{}`",
                        loss.ident,
                        tidy(&loss.ty),
                        dup.ident
                    ),
                );
            }
        }
        let layer_count = parsed
            .iter()
            .filter(|p| matches!(p, Parsed::Layer(_)))
            .count();
        if !broken && loss_pos.is_empty() {
            let last = parsed.iter().rev().find_map(|p| match p {
                Parsed::Layer(l) => Some(l),
                _ => None,
            });
            let example = match last {
                Some(l) if l.outputs.value >= 2 => format!(
                    "`loss: Mse<{o}>` (regression) or `loss: SoftmaxCrossEntropy<{o}>` \
                     (classification) after `{}`",
                    l.ident,
                    o = l.outputs.value
                ),
                Some(l) => format!(
                    "`loss: Mse<{}>` after `{}`",
                    l.outputs.value.max(1),
                    l.ident
                ),
                None => "`loss: Mse<1>`".to_string(),
            };
            errors.spanned(
                &s.ident,
                format!("missing loss: the last field of a network is its loss; add {example}"),
            );
        }
        if !broken && layer_count == 0 && !loss_pos.is_empty() {
            let Parsed::Loss(loss) = &parsed[loss_pos[0]] else {
                unreachable!()
            };
            errors.spanned(
                &s.ident,
                format!(
                    "a network needs at least one layer before the loss; add e.g. \
                     `out: Dense<2, {}, Identity>` above `{}`",
                    loss.width.value.max(1),
                    loss.ident
                ),
            );
        }

        if !errors.is_empty() {
            // Check what did parse, so that these errors come together with the others.
            // The slots are in the intended order (the loss last); a field that did not
            // parse, or a misplaced loss, breaks the chain so that no guess is reported.
            let mut slots: Vec<Slot> = Vec::new();
            for (i, p) in parsed.iter().enumerate() {
                match p {
                    Parsed::Layer(l) => slots.push(Slot::Layer(l)),
                    Parsed::Broken => slots.push(Slot::Broken),
                    Parsed::Loss(_) if Some(&i) == loss_pos.first() => {}
                    Parsed::Loss(_) => slots.push(Slot::Broken),
                }
            }
            if let Some(&first) = loss_pos.first() {
                let Parsed::Loss(loss) = &parsed[first] else {
                    unreachable!()
                };
                if misplaced {
                    slots.push(Slot::Broken);
                }
                slots.push(Slot::Loss(loss));
            }
            check_slots(&slots, &mut errors);
            return Err(errors.finish().unwrap_err());
        }

        let mut layers = Vec::new();
        let mut loss = None;
        for p in parsed {
            match p {
                Parsed::Layer(l) => layers.push(l),
                Parsed::Loss(l) => loss = Some(l),
                Parsed::Broken => unreachable!("reported above"),
            }
        }
        Ok(Net {
            attrs: s.attrs.clone(),
            vis: s.vis.clone(),
            ident: s.ident.clone(),
            batch,
            scalar,
            layers,
            loss: loss.expect("checked above"),
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

fn ungroup(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => ungroup(&g.elem),
        other => other,
    }
}

fn parse_field(field: &syn::Field, ident: Ident, last: bool, errors: &mut Errors) -> Parsed {
    let (elem, array) = match ungroup(&field.ty) {
        Type::Array(arr) => {
            let len = match int_lit(&arr.len) {
                Some(n) => Num {
                    value: n,
                    span: arr.len.span(),
                },
                None => {
                    errors.spanned(
                        &arr.len,
                        format!(
                            "the length of an array of layers must be an integer literal, found \
                             `{}` (the macro cannot read named constants); write e.g. `[{}; 16]`",
                            tidy(&arr.len),
                            tidy(&arr.elem)
                        ),
                    );
                    return Parsed::Broken;
                }
            };
            (ungroup(&arr.elem), Some(len))
        }
        other => (other, None),
    };
    let tp = match elem {
        Type::Path(tp) if tp.qself.is_none() => tp,
        _ => {
            errors.spanned(
                &field.ty,
                format!(
                    "expected a layer or a loss, found `{}`; write {LAYER_HELP}",
                    tidy(&field.ty)
                ),
            );
            return Parsed::Broken;
        }
    };
    let seg = tp.path.segments.last().expect("a path has a segment");
    let name = seg.ident.to_string();
    let args: Vec<&GenericArgument> = match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().collect(),
        PathArguments::None => Vec::new(),
        PathArguments::Parenthesized(p) => {
            errors.spanned(
                p,
                format!(
                    "`{name}` takes `<...>` arguments, not `(...)`; write `{name}<{}>`",
                    tidy(&p.inputs)
                ),
            );
            return Parsed::Broken;
        }
    };
    let args_span = match &seg.arguments {
        PathArguments::None => quote::ToTokens::to_token_stream(&seg.ident),
        a => quote::ToTokens::to_token_stream(a),
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
                LayerKind::DenseNoBias => {
                    "`DenseNoBias<I, O, Act>`, e.g. `DenseNoBias<3, 16, Tanh>`"
                }
            };
            let want = if kind == LayerKind::Residual { 2 } else { 3 };
            if kind == LayerKind::Residual && args.len() == 3 {
                if let (Some(w), Some(o)) = (const_arg(args[0]), const_arg(args[1])) {
                    let act = tidy(args[2]);
                    let dense = if w.value == o.value {
                        String::new()
                    } else {
                        format!(
                            ", or `Dense<{}, {}, {act}>` to go from width {} to {}",
                            w.value, o.value, w.value, o.value
                        )
                    };
                    errors.at(
                        o.span,
                        format!(
                            "a residual stage keeps its width (z + act(W z + b)), so `Residual` \
                             takes one width, not two; write `Residual<{}, {act}>`{dense}",
                            w.value
                        ),
                    );
                    return Parsed::Broken;
                }
            }
            if args.len() != want {
                let fix = match (kind, args.as_slice()) {
                    (LayerKind::Dense | LayerKind::DenseNoBias, [w, act])
                        if const_arg(w).is_some() =>
                    {
                        let w = const_arg(w).map_or(0, |n| n.value);
                        let act = tidy(act);
                        format!(
                            "`{name}<{w}, O, {act}>` with O its outputs, or `Residual<{w}, {act}>` \
                             for a stage that keeps width {w}"
                        )
                    }
                    _ => usage.to_string(),
                };
                errors.spanned(
                    &args_span,
                    format!(
                        "`{name}` takes {want} arguments, found {}; write {fix}",
                        args.len()
                    ),
                );
                return Parsed::Broken;
            }
            let mut nums = Vec::new();
            for arg in &args[..want - 1] {
                match const_arg(arg) {
                    Some(n) => nums.push(n),
                    None => errors.spanned(
                        arg,
                        format!(
                            "widths must be integer literals, found `{}` (the macro cannot read \
                             named constants); write {usage}",
                            tidy(arg)
                        ),
                    ),
                }
            }
            // A bad activation is reported, but the widths still take part in the checks.
            let act = activation(args[want - 1], errors);
            if nums.len() != want - 1 {
                return Parsed::Broken;
            }
            let (inputs, outputs) = if kind == LayerKind::Residual {
                (nums[0], nums[0])
            } else {
                (nums[0], nums[1])
            };
            Parsed::Layer(LayerField {
                attrs,
                vis,
                ident,
                kind,
                inputs,
                outputs,
                act,
                array,
                ty: field.ty.clone(),
            })
        }
        "Mse" | "SoftmaxCrossEntropy" => {
            let kind = if name == "Mse" {
                LossKind::Mse
            } else {
                LossKind::SoftmaxCrossEntropy
            };
            let usage = if kind == LossKind::Mse {
                "`Mse<O>` with O the number of outputs, e.g. `Mse<2>`"
            } else {
                "`SoftmaxCrossEntropy<C>` with C the number of classes, e.g. \
                 `SoftmaxCrossEntropy<10>`"
            };
            if let Some(n) = array {
                errors.spanned(
                    &field.ty,
                    format!(
                        "a loss cannot be an array (found length {}); write `{ident}: {}`",
                        n.value,
                        tidy(elem)
                    ),
                );
                return Parsed::Broken;
            }
            let width = match args.as_slice() {
                [arg] => match const_arg(arg) {
                    Some(n) => n,
                    None => {
                        errors.spanned(
                            arg,
                            format!(
                                "the width of a loss must be an integer literal, found `{}` (the \
                                 macro cannot read named constants); write {usage}",
                                tidy(arg)
                            ),
                        );
                        return Parsed::Broken;
                    }
                },
                _ => {
                    errors.spanned(
                        &args_span,
                        format!(
                            "`{name}` takes 1 argument, found {}; write {usage}",
                            args.len()
                        ),
                    );
                    return Parsed::Broken;
                }
            };
            Parsed::Loss(LossField {
                attrs,
                vis,
                ident,
                kind,
                width,
                custom: None,
                ty: field.ty.clone(),
            })
        }
        _ if last
            && array.is_none()
            && args.len() == 1
            && const_arg(args[0]).is_some()
            && !near_builtin(&tp.path, TYPE_ALIASES, TYPE_NAMES)
            && !ACTIVATIONS.iter().any(|a| a.eq_ignore_ascii_case(&name)) =>
        {
            // A loss type of the user's scope (`#[loss]`): `Name<O>` as the last field.
            let mut path = tp.path.clone();
            if let Some(seg) = path.segments.last_mut() {
                seg.arguments = PathArguments::None;
            }
            Parsed::Loss(LossField {
                attrs,
                vis,
                ident,
                kind: LossKind::Custom,
                width: const_arg(args[0]).expect("checked"),
                custom: Some(path),
                ty: field.ty.clone(),
            })
        }
        _ => {
            let loss_like = args.len() == 1 && const_arg(args[0]).is_some();
            let args = match &seg.arguments {
                PathArguments::None => String::new(),
                a => tidy(a),
            };
            let msg = if ACTIVATIONS.contains(&name.as_str()) {
                format!(
                    "`{name}` is an activation, not a layer; write it inside a layer instead, \
                     e.g. `{ident}: Residual<16, {name}>` or `{ident}: Dense<3, 16, {name}>`"
                )
            } else {
                let custom = if !loss_like || last {
                    String::new()
                } else {
                    "; a custom loss `Name<O>` (from `#[loss]`) must be the last field".to_string()
                };
                match suggest(&name, TYPE_ALIASES, TYPE_NAMES) {
                    Some(to) => format!(
                        "unknown layer or loss `{name}`; write `{to}{args}` if that is what \
                         you meant, else {LAYER_HELP}{custom}"
                    ),
                    None => format!("unknown layer or loss `{name}`; write {LAYER_HELP}{custom}"),
                }
            };
            errors.spanned(&seg.ident, msg);
            Parsed::Broken
        }
    }
}

fn const_arg(arg: &GenericArgument) -> Option<Num> {
    match arg {
        GenericArgument::Const(expr) => int_lit(expr).map(|value| Num {
            value,
            span: expr.span(),
        }),
        _ => None,
    }
}

/// Whether a single-segment `path` is a built-in name in another case (`MSE`, `tanh`) or a
/// name from another library with a built-in equivalent (`Linear`, `Swish`): taken as a
/// mistake rather than as a type of the user's scope (which can still be named `self::Swish`).
fn near_builtin(
    path: &syn::Path,
    aliases: &[(&str, &'static str)],
    names: &[&'static str],
) -> bool {
    if path.segments.len() != 1 || path.leading_colon.is_some() {
        return false;
    }
    let id = &path.segments[0].ident;
    let name = id.to_string();
    names.iter().any(|n| n.eq_ignore_ascii_case(&name))
        || aliases.iter().any(|(a, _)| a.eq_ignore_ascii_case(&name))
}

/// The activation named by `arg`: a built-in (`Tanh`), or a type of the user's scope
/// (`Softsign`, `acts::Softsign`, made by `#[activation]`), whose being an activation the
/// compiler checks. A built-in name in another case (`ReLU`) or another library's name for
/// a built-in (`Linear`, `Swish`) is an error with the fix. On error, records it and returns
/// a stand-in (the likely intended activation, else `Act`) so the layer's widths can still
/// be checked and shown in other messages; the declaration fails either way.
fn activation(arg: &GenericArgument, errors: &mut Errors) -> Act {
    let list = ACTIVATIONS.join(", ");
    let stand_in = Act::Builtin(Ident::new("Act", arg.span()));
    let tp = match arg {
        GenericArgument::Type(Type::Path(tp)) if tp.qself.is_none() => tp,
        _ => {
            errors.spanned(
                arg,
                format!(
                    "expected an activation, found `{}`; write one of {list}, or the name of an \
                     `#[activation]` function's type, e.g. `Dense<3, 16, Tanh>`",
                    tidy(arg)
                ),
            );
            return stand_in;
        }
    };
    let seg = tp.path.segments.last().expect("a path has a segment");
    let name = seg.ident.to_string();
    let single = tp.path.segments.len() == 1 && tp.path.leading_colon.is_none();
    if single && seg.arguments.is_empty() && ACTIVATIONS.contains(&name.as_str()) {
        return Act::Builtin(seg.ident.clone());
    }
    if single && near_builtin(&tp.path, ACTIVATION_ALIASES, ACTIVATIONS) {
        let meant = suggest(&name, ACTIVATION_ALIASES, ACTIVATIONS);
        let msg = match meant {
            Some(m) => format!(
                "unknown activation `{name}`; write `{m}` if that is what you meant, else \
                 one of {list} (for your own `#[activation]` type of this name, write \
                 `self::{name}`)"
            ),
            None => format!("unknown activation `{name}`; write one of {list}"),
        };
        errors.spanned(&seg.ident, msg);
        return Act::Builtin(Ident::new(meant.unwrap_or("Act"), seg.ident.span()));
    }
    Act::Custom(tp.path.clone())
}
