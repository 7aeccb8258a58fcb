//! Scalar expressions as a hash-consed DAG: building with simplification, symbolic
//! differentiation, specialisation of branches, and emission as readable Rust.
//!
//! This is the engine behind `#[activation]` and `#[loss]`
//! ([`mod@crate::scalar_fn`]). A [`Graph`] holds every node once: building a node that
//! already exists returns the existing [`Id`], so repeated subexpressions (of the body and of
//! its derivatives) are shared and later computed once. The builders ([`Graph::add`],
//! [`Graph::mul`], ...) simplify as they go: constant folding, `x + 0`, `x * 1`, `x * 0`,
//! `--x`, `x - x`, constants gathered in products, negations pulled out of products.
//!
//! Children are always built before their parents, so node ids are a topological order.
//!
//! Branches (`if`/`else`, and `max`/`min` against a constant) are [`Op::Select`] nodes on a
//! comparison. [`Graph::diff`] differentiates them branch by branch; [`emit_body`] lifts
//! them into real `if`/`else` blocks, each computing only what its branch needs.

use std::collections::{BTreeSet, HashMap, HashSet};

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

/// A node of a [`Graph`].
pub type Id = usize;

/// Elementwise functions of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    /// `e^x`
    Exp,
    /// natural logarithm
    Ln,
    /// square root
    Sqrt,
    /// hyperbolic tangent
    Tanh,
    /// hyperbolic sine
    Sinh,
    /// hyperbolic cosine
    Cosh,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// arctangent
    Atan,
    /// absolute value
    Abs,
    /// `1`, `-1`, or `0` at zero: the derivative of `abs` (internal, emitted as a runtime call).
    Sign,
}

impl Func {
    /// The method name users write (`x.exp()`), if any.
    pub fn from_method(name: &str) -> Option<Func> {
        Some(match name {
            "exp" => Func::Exp,
            "ln" => Func::Ln,
            "sqrt" => Func::Sqrt,
            "tanh" => Func::Tanh,
            "sinh" => Func::Sinh,
            "cosh" => Func::Cosh,
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "atan" => Func::Atan,
            "abs" => Func::Abs,
            _ => return None,
        })
    }

    fn method(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Ln => "ln",
            Func::Sqrt => "sqrt",
            Func::Tanh => "tanh",
            Func::Sinh => "sinh",
            Func::Cosh => "cosh",
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Atan => "atan",
            Func::Abs => "abs",
            Func::Sign => "sign",
        }
    }

    fn eval(self, x: f64) -> f64 {
        match self {
            Func::Exp => x.exp(),
            Func::Ln => x.ln(),
            Func::Sqrt => x.sqrt(),
            Func::Tanh => x.tanh(),
            Func::Sinh => x.sinh(),
            Func::Cosh => x.cosh(),
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Atan => x.atan(),
            Func::Abs => x.abs(),
            Func::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// A comparison in a branch condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Cmp {
    fn eval(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
        }
    }

    fn tokens(self) -> TokenStream {
        match self {
            Cmp::Lt => quote!(<),
            Cmp::Le => quote!(<=),
            Cmp::Gt => quote!(>),
            Cmp::Ge => quote!(>=),
            Cmp::Eq => quote!(==),
            Cmp::Ne => quote!(!=),
        }
    }
}

/// One node. Constants are stored by their bits so that nodes can be hashed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A numeric constant (finite; `f64::to_bits`).
    Const(u64),
    /// A named constant of the user's scope, by index into [`Graph::named`] (opaque: never
    /// folded, derivative 0).
    Named(usize),
    /// Argument `k` of the function.
    Arg(usize),
    /// `a + b`
    Add(Id, Id),
    /// `a - b`
    Sub(Id, Id),
    /// `a * b`
    Mul(Id, Id),
    /// `a / b`
    Div(Id, Id),
    /// `-a`
    Neg(Id),
    /// `a.powi(n)`
    Powi(Id, i32),
    /// `a.powf(c)`, `c` free of the differentiation variable.
    Powf(Id, Id),
    /// `f(a)`
    Call(Func, Id),
    /// A comparison `a op b` (a condition, not a number).
    Cmp(Cmp, Id, Id),
    /// `if cond { a } else { b }`
    Select(Id, Id, Id),
}

/// A hash-consed expression DAG.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<Op>,
    index: HashMap<Op, Id>,
    /// The named constants' paths, as written.
    pub named: Vec<TokenStream>,
    derivs: HashMap<(Id, usize), Id>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// The node `id`.
    pub fn op(&self, id: Id) -> &Op {
        &self.nodes[id]
    }

    /// Number of distinct nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn intern(&mut self, op: Op) -> Id {
        if let Some(&id) = self.index.get(&op) {
            return id;
        }
        let id = self.nodes.len();
        self.nodes.push(op.clone());
        self.index.insert(op, id);
        id
    }

    /// The value of `id` if it is a numeric constant.
    pub fn value(&self, id: Id) -> Option<f64> {
        match self.nodes[id] {
            Op::Const(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    fn is(&self, id: Id, v: f64) -> bool {
        self.value(id) == Some(v)
    }

    /// A numeric constant. Non-finite values are not representable (callers never fold into
    /// them).
    pub fn constant(&mut self, v: f64) -> Id {
        debug_assert!(v.is_finite());
        // One zero: `-0.0` and `0.0` behave alike in every rule here.
        let v = if v == 0.0 { 0.0 } else { v };
        self.intern(Op::Const(v.to_bits()))
    }

    /// A named constant, by its path.
    pub fn named(&mut self, path: TokenStream) -> Id {
        let key = path.to_string();
        let k = match self.named.iter().position(|p| p.to_string() == key) {
            Some(k) => k,
            None => {
                self.named.push(path);
                self.named.len() - 1
            }
        };
        self.intern(Op::Named(k))
    }

    /// Argument `k`.
    pub fn arg(&mut self, k: usize) -> Id {
        self.intern(Op::Arg(k))
    }

    /// Folds `f` if the result is finite.
    fn fold(&mut self, v: f64) -> Option<Id> {
        v.is_finite().then(|| self.constant(v))
    }

    /// `a + b`, simplified.
    pub fn add(&mut self, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.value(a), self.value(b)) {
            if let Some(c) = self.fold(x + y) {
                return c;
            }
        }
        if self.is(a, 0.0) {
            return b;
        }
        if self.is(b, 0.0) {
            return a;
        }
        if let Op::Neg(nb) = self.nodes[b] {
            return self.sub(a, nb);
        }
        if let Op::Neg(na) = self.nodes[a] {
            return self.sub(b, na);
        }
        if a == b {
            let two = self.constant(2.0);
            return self.mul(two, a);
        }
        // Canonical order for sharing; a constant goes first (`1 + t`).
        let (a, b) = self.order(a, b);
        self.intern(Op::Add(a, b))
    }

    /// Constants first, then by id.
    fn order(&self, a: Id, b: Id) -> (Id, Id) {
        let ca = self.value(a).is_some();
        let cb = self.value(b).is_some();
        if (cb && !ca) || (ca == cb && b < a) {
            (b, a)
        } else {
            (a, b)
        }
    }

    /// `a - b`, simplified.
    pub fn sub(&mut self, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.value(a), self.value(b)) {
            if let Some(c) = self.fold(x - y) {
                return c;
            }
        }
        if self.is(b, 0.0) {
            return a;
        }
        if self.is(a, 0.0) {
            return self.neg(b);
        }
        if a == b {
            return self.constant(0.0);
        }
        if let Op::Neg(nb) = self.nodes[b] {
            return self.add(a, nb);
        }
        if self.nodes[a] == Op::Neg(b) {
            // -x - x = -2 x
            let m2 = self.constant(-2.0);
            return self.mul(m2, b);
        }
        self.intern(Op::Sub(a, b))
    }

    /// `a * b`, simplified.
    pub fn mul(&mut self, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.value(a), self.value(b)) {
            if let Some(c) = self.fold(x * y) {
                return c;
            }
        }
        let (a, b) = self.order(a, b);
        // Now a constant, if any, is `a`.
        if let Some(x) = self.value(a) {
            if x == 0.0 {
                return a;
            }
            if x == 1.0 {
                return b;
            }
            if x == -1.0 {
                return self.neg(b);
            }
            // c1 * (c2 * t) = (c1 c2) * t
            if let Op::Mul(c2, t) = self.nodes[b] {
                if let Some(y) = self.value(c2) {
                    if let Some(c) = self.fold(x * y) {
                        return self.mul(c, t);
                    }
                }
            }
            if let Op::Neg(t) = self.nodes[b] {
                let c = self.constant(-x);
                return self.mul(c, t);
            }
        }
        match (self.nodes[a].clone(), self.nodes[b].clone()) {
            (Op::Neg(x), Op::Neg(y)) => return self.mul(x, y),
            (Op::Neg(x), _) => {
                let m = self.mul(x, b);
                return self.neg(m);
            }
            (_, Op::Neg(y)) => {
                let m = self.mul(a, y);
                return self.neg(m);
            }
            _ => {}
        }
        if a == b && self.value(a).is_none() {
            return self.intern(Op::Mul(a, a));
        }
        self.intern(Op::Mul(a, b))
    }

    /// `a / b`, simplified.
    pub fn div(&mut self, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.value(a), self.value(b)) {
            if y != 0.0 {
                if let Some(c) = self.fold(x / y) {
                    return c;
                }
            }
        }
        if self.is(a, 0.0) && !self.is(b, 0.0) {
            return a;
        }
        if self.is(b, 1.0) {
            return a;
        }
        if self.is(b, -1.0) {
            return self.neg(a);
        }
        match (self.nodes[a].clone(), self.nodes[b].clone()) {
            (Op::Neg(x), Op::Neg(y)) => return self.div(x, y),
            (Op::Neg(x), _) => {
                let d = self.div(x, b);
                return self.neg(d);
            }
            (_, Op::Neg(y)) => {
                let d = self.div(a, y);
                return self.neg(d);
            }
            _ => {}
        }
        self.intern(Op::Div(a, b))
    }

    /// `-a`, simplified.
    pub fn neg(&mut self, a: Id) -> Id {
        if let Some(x) = self.value(a) {
            return self.constant(-x);
        }
        match self.nodes[a] {
            Op::Neg(x) => x,
            Op::Sub(x, y) => self.sub(y, x),
            _ => self.intern(Op::Neg(a)),
        }
    }

    /// `a.powi(n)`, simplified.
    pub fn powi(&mut self, a: Id, n: i32) -> Id {
        if n == 0 {
            return self.constant(1.0);
        }
        if n == 1 {
            return a;
        }
        if let Some(x) = self.value(a) {
            if let Some(c) = self.fold(x.powi(n)) {
                return c;
            }
        }
        if let Op::Powi(x, m) = self.nodes[a] {
            if let Some(k) = m.checked_mul(n) {
                return self.powi(x, k);
            }
        }
        self.intern(Op::Powi(a, n))
    }

    /// `a.powf(c)`, simplified.
    pub fn powf(&mut self, a: Id, c: Id) -> Id {
        if self.is(c, 1.0) {
            return a;
        }
        if self.is(c, 0.0) {
            return self.constant(1.0);
        }
        if let (Some(x), Some(y)) = (self.value(a), self.value(c)) {
            if let Some(v) = self.fold(x.powf(y)) {
                return v;
            }
        }
        self.intern(Op::Powf(a, c))
    }

    /// `f(a)`, folded for a constant argument.
    pub fn call(&mut self, f: Func, a: Id) -> Id {
        if let Some(x) = self.value(a) {
            if let Some(c) = self.fold(f.eval(x)) {
                return c;
            }
        }
        match (f, self.nodes[a].clone()) {
            (Func::Abs, Op::Neg(x)) => return self.call(Func::Abs, x),
            (Func::Abs, Op::Call(Func::Abs, _)) => return a,
            _ => {}
        }
        self.intern(Op::Call(f, a))
    }

    /// The condition `a op b`; `Err(v)` when it folds to the constant truth value `v`.
    pub fn cmp(&mut self, op: Cmp, a: Id, b: Id) -> Result<Id, bool> {
        if let (Some(x), Some(y)) = (self.value(a), self.value(b)) {
            return Err(op.eval(x, y));
        }
        Ok(self.intern(Op::Cmp(op, a, b)))
    }

    /// `if cond { a } else { b }`, simplified.
    pub fn select(&mut self, cond: Result<Id, bool>, a: Id, b: Id) -> Id {
        match cond {
            Err(true) => a,
            Err(false) => b,
            Ok(_) if a == b => a,
            Ok(c) => self.intern(Op::Select(c, a, b)),
        }
    }

    /// The children of `id`, in order.
    pub fn children(&self, id: Id) -> Vec<Id> {
        match self.nodes[id] {
            Op::Const(_) | Op::Named(_) | Op::Arg(_) => vec![],
            Op::Neg(a) | Op::Powi(a, _) | Op::Call(_, a) => vec![a],
            Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) | Op::Powf(a, b) => {
                vec![a, b]
            }
            Op::Cmp(_, a, b) => vec![a, b],
            Op::Select(c, a, b) => vec![c, a, b],
        }
    }

    /// Whether `id` depends on argument `k`.
    pub fn depends_on(&self, id: Id, k: usize) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            if self.nodes[n] == Op::Arg(k) {
                return true;
            }
            stack.extend(self.children(n));
        }
        false
    }

    /// `d id / d arg_k`, simplified and shared (memoised).
    pub fn diff(&mut self, id: Id, k: usize) -> Id {
        if let Some(&d) = self.derivs.get(&(id, k)) {
            return d;
        }
        let d = match self.nodes[id].clone() {
            Op::Const(_) | Op::Named(_) => self.constant(0.0),
            Op::Arg(j) => self.constant(if j == k { 1.0 } else { 0.0 }),
            Op::Add(a, b) => {
                let (da, db) = (self.diff(a, k), self.diff(b, k));
                self.add(da, db)
            }
            Op::Sub(a, b) => {
                let (da, db) = (self.diff(a, k), self.diff(b, k));
                self.sub(da, db)
            }
            Op::Mul(a, b) => {
                let (da, db) = (self.diff(a, k), self.diff(b, k));
                let l = self.mul(da, b);
                let r = self.mul(a, db);
                self.add(l, r)
            }
            Op::Div(a, b) => {
                // (a / b)' = (a' - (a / b) b') / b: shares the quotient itself.
                let (da, db) = (self.diff(a, k), self.diff(b, k));
                let qdb = self.mul(id, db);
                let num = self.sub(da, qdb);
                self.div(num, b)
            }
            Op::Neg(a) => {
                let da = self.diff(a, k);
                self.neg(da)
            }
            Op::Powi(a, n) => {
                let da = self.diff(a, k);
                let p = self.powi(a, n - 1);
                let c = self.constant(f64::from(n));
                let cp = self.mul(c, p);
                self.mul(cp, da)
            }
            Op::Powf(a, c) => {
                let da = self.diff(a, k);
                let one = self.constant(1.0);
                let cm1 = self.sub(c, one);
                let p = self.powf(a, cm1);
                let cp = self.mul(c, p);
                self.mul(cp, da)
            }
            Op::Call(f, a) => {
                let da = self.diff(a, k);
                let inner = match f {
                    Func::Exp => id,
                    Func::Ln => {
                        let d = self.div(da, a);
                        self.derivs.insert((id, k), d);
                        return d;
                    }
                    Func::Sqrt => {
                        // (sqrt a)' = a' / (2 sqrt a)
                        let two = self.constant(2.0);
                        let den = self.mul(two, id);
                        let d = self.div(da, den);
                        self.derivs.insert((id, k), d);
                        return d;
                    }
                    Func::Tanh => {
                        let one = self.constant(1.0);
                        let sq = self.mul(id, id);
                        self.sub(one, sq)
                    }
                    Func::Sinh => self.call(Func::Cosh, a),
                    Func::Cosh => self.call(Func::Sinh, a),
                    Func::Sin => self.call(Func::Cos, a),
                    Func::Cos => {
                        let s = self.call(Func::Sin, a);
                        self.neg(s)
                    }
                    Func::Atan => {
                        let one = self.constant(1.0);
                        let sq = self.mul(a, a);
                        let den = self.add(one, sq);
                        let d = self.div(da, den);
                        self.derivs.insert((id, k), d);
                        return d;
                    }
                    Func::Abs => self.call(Func::Sign, a),
                    Func::Sign => self.constant(0.0),
                };
                self.mul(inner, da)
            }
            Op::Cmp(..) => unreachable!("a condition is not differentiated"),
            Op::Select(c, a, b) => {
                let (da, db) = (self.diff(a, k), self.diff(b, k));
                self.select(Ok(c), da, db)
            }
        };
        self.derivs.insert((id, k), d);
        d
    }

    /// `id` with every `Select` on `cond` replaced by its `then` (`val`) or `else` branch,
    /// re-simplified. `names` carries preferred local names over to the rebuilt nodes.
    fn specialise(
        &mut self,
        id: Id,
        cond: Id,
        val: bool,
        memo: &mut HashMap<Id, Id>,
        names: &mut HashMap<Id, String>,
    ) -> Id {
        if let Some(&r) = memo.get(&id) {
            return r;
        }
        let r = match self.nodes[id].clone() {
            Op::Const(_) | Op::Named(_) | Op::Arg(_) => id,
            Op::Select(c, a, b) if c == cond => {
                let pick = if val { a } else { b };
                self.specialise(pick, cond, val, memo, names)
            }
            op => {
                let mut s = |g: &mut Graph, x: Id| g.specialise(x, cond, val, memo, names);
                match op {
                    Op::Add(a, b) => {
                        let (a, b) = (s(self, a), s(self, b));
                        self.add(a, b)
                    }
                    Op::Sub(a, b) => {
                        let (a, b) = (s(self, a), s(self, b));
                        self.sub(a, b)
                    }
                    Op::Mul(a, b) => {
                        let (a, b) = (s(self, a), s(self, b));
                        self.mul(a, b)
                    }
                    Op::Div(a, b) => {
                        let (a, b) = (s(self, a), s(self, b));
                        self.div(a, b)
                    }
                    Op::Neg(a) => {
                        let a = s(self, a);
                        self.neg(a)
                    }
                    Op::Powi(a, n) => {
                        let a = s(self, a);
                        self.powi(a, n)
                    }
                    Op::Powf(a, c) => {
                        let (a, c) = (s(self, a), s(self, c));
                        self.powf(a, c)
                    }
                    Op::Call(f, a) => {
                        let a = s(self, a);
                        self.call(f, a)
                    }
                    Op::Select(c, a, b) => {
                        let Op::Cmp(op, x, y) = self.nodes[c].clone() else {
                            unreachable!("a select's condition is a comparison")
                        };
                        let (x, y) = (s(self, x), s(self, y));
                        let cond = self.cmp(op, x, y);
                        let (a, b) = (s(self, a), s(self, b));
                        self.select(cond, a, b)
                    }
                    Op::Cmp(..) => unreachable!("conditions are rebuilt by their select"),
                    Op::Const(_) | Op::Named(_) | Op::Arg(_) => unreachable!(),
                }
            }
        };
        if r != id {
            if let Some(n) = names.get(&id).cloned() {
                names.entry(r).or_insert(n);
            }
        }
        memo.insert(id, r);
        r
    }
}

/// The number of straight-line blocks [`emit_body`] would write for `roots` (one per
/// combination of branch conditions that can actually occur together), counting no further
/// than just past `limit`. Independent conditions multiply: `n` of them give up to `2^n`
/// blocks, which is what this guards against.
pub fn piece_count(g: &mut Graph, roots: &[Id], limit: usize) -> usize {
    let mut seen = HashSet::new();
    let mut stack = roots.to_vec();
    let mut first_cond: Option<Id> = None;
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        if let Op::Select(c, _, _) = g.op(n) {
            first_cond = Some(first_cond.map_or(*c, |f| f.min(*c)));
        }
        stack.extend(g.children(n));
    }
    let Some(c) = first_cond else { return 1 };
    let mut total = 0;
    for val in [true, false] {
        let mut memo = HashMap::new();
        let mut names = HashMap::new();
        let spec: Vec<Id> = roots
            .iter()
            .map(|&r| g.specialise(r, c, val, &mut memo, &mut names))
            .collect();
        total += piece_count(g, &spec, limit.saturating_sub(total));
        if total > limit {
            break;
        }
    }
    total
}

/// How [`emit_body`] writes leaves and names locals.
pub struct EmitCx<'a> {
    /// The scalar type parameter (`T`).
    pub scalar: TokenStream,
    /// The runtime path (`::tall_skinny::runtime`).
    pub rt: TokenStream,
    /// The argument names, by index.
    pub args: &'a [Ident],
    /// Preferred names of nodes (the user's `let` bindings).
    pub names: HashMap<Id, String>,
}

struct Emitter<'a, 'b> {
    g: &'a mut Graph,
    cx: &'a mut EmitCx<'b>,
    used: HashSet<String>,
    next_tmp: usize,
    /// Roots and the names they should get, in order.
    root_names: Vec<String>,
}

/// The statements and tail expression of a function body returning `roots` (one value, or a
/// tuple of several), with the given names for the roots (`f`, `df`, ...). Branches become
/// `if`/`else` blocks; within a block every intermediate is a named local computed once.
pub fn emit_body(g: &mut Graph, cx: &mut EmitCx, roots: &[Id], root_names: &[&str]) -> TokenStream {
    let mut used: HashSet<String> = cx.args.iter().map(|a| a.to_string()).collect();
    used.insert("T".into());
    let mut e = Emitter {
        g,
        cx,
        used,
        next_tmp: 0,
        root_names: root_names.iter().map(|s| s.to_string()).collect(),
    };
    let bound = HashMap::new();
    e.block(roots.to_vec(), bound)
}

impl Emitter<'_, '_> {
    fn fresh(&mut self, want: Option<&str>) -> Ident {
        let name = match want {
            Some(w) => {
                let mut n = w.to_string();
                let mut k = 2;
                while self.used.contains(&n) {
                    n = format!("{w}_{k}");
                    k += 1;
                }
                n
            }
            None => loop {
                let n = format!("t{}", self.next_tmp);
                self.next_tmp += 1;
                if !self.used.contains(&n) {
                    break n;
                }
            },
        };
        self.used.insert(name.clone());
        Ident::new(&name, Span::call_site())
    }

    fn is_leaf(&self, id: Id) -> bool {
        matches!(self.g.op(id), Op::Const(_) | Op::Named(_) | Op::Arg(_))
    }

    /// Reachable nodes from `from`, not descending into the branches of any `Select`
    /// (whose condition is followed only if `into_conds`), and not past `bound` nodes.
    fn reach(
        &self,
        from: &[Id],
        bound: &HashMap<Id, TokenStream>,
        stop_at_select: bool,
    ) -> BTreeSet<Id> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<Id> = from.to_vec();
        while let Some(n) = stack.pop() {
            if bound.contains_key(&n) || !seen.insert(n) {
                continue;
            }
            match self.g.op(n) {
                Op::Select(..) if stop_at_select => {}
                _ => stack.extend(self.g.children(n)),
            }
        }
        seen
    }

    fn select_free(&self, id: Id, memo: &mut HashMap<Id, bool>) -> bool {
        if let Some(&v) = memo.get(&id) {
            return v;
        }
        let v = !matches!(self.g.op(id), Op::Select(..))
            && self
                .g
                .children(id)
                .into_iter()
                .all(|c| self.select_free(c, memo));
        memo.insert(id, v);
        v
    }

    fn block(&mut self, roots: Vec<Id>, mut bound: HashMap<Id, TokenStream>) -> TokenStream {
        let mut stmts = Vec::new();
        // Everything needed whichever way the branches go: reachable without entering a
        // select, and free of selects itself.
        let all = self.reach(&roots, &bound, false);
        let conds: BTreeSet<Id> = all
            .iter()
            .filter_map(|&n| match self.g.op(n) {
                Op::Select(c, _, _) => Some(*c),
                _ => None,
            })
            .collect();
        let mut memo = HashMap::new();
        let mut before: Vec<Id> = self.reach(&roots, &bound, true).into_iter().collect();
        if let Some(&c) = conds.iter().next() {
            // The first condition's operands contain no select (they were built before it).
            before.extend(self.reach(&self.g.children(c), &bound, false));
        }
        before.sort_unstable();
        before.dedup();
        let mut last: Option<(Id, TokenStream)> = None;
        for n in before {
            if self.is_leaf(n) || matches!(self.g.op(n), Op::Cmp(..)) || bound.contains_key(&n) {
                continue;
            }
            if !self.select_free(n, &mut memo) {
                continue;
            }
            let expr = self.bind(n, &roots, &mut bound, &mut stmts);
            last = Some((n, expr));
        }
        let tail = match conds.iter().next() {
            // A single value computed last is the block's tail expression, not a local.
            None if roots.len() == 1 && last.as_ref().is_some_and(|(n, _)| *n == roots[0]) => {
                stmts.pop();
                last.expect("checked").1
            }
            None => {
                let vals: Vec<TokenStream> =
                    roots.iter().map(|&r| self.render(r, &bound)).collect();
                match vals.as_slice() {
                    [one] => one.clone(),
                    many => quote!((#(#many),*)),
                }
            }
            Some(&c) => {
                let Op::Cmp(op, a, b) = self.g.op(c).clone() else {
                    unreachable!("conditions are comparisons")
                };
                let (a, b, op) = (self.render(a, &bound), self.render(b, &bound), op.tokens());
                let branch = |e: &mut Self, val: bool| {
                    let mut memo = HashMap::new();
                    let roots: Vec<Id> = roots
                        .iter()
                        .map(|&r| e.g.specialise(r, c, val, &mut memo, &mut e.cx.names))
                        .collect();
                    e.block(roots, bound.clone())
                };
                // Sibling blocks are separate scopes: the `else` block may reuse the names
                // the `then` block chose.
                let outer = self.used.clone();
                let then = branch(self, true);
                self.used = outer.clone();
                let els = branch(self, false);
                self.used = outer;
                quote! {
                    if #a #op #b {
                        #then
                    } else {
                        #els
                    }
                }
            }
        };
        quote! {
            #(#stmts)*
            #tail
        }
    }

    fn bind(
        &mut self,
        n: Id,
        roots: &[Id],
        bound: &mut HashMap<Id, TokenStream>,
        stmts: &mut Vec<TokenStream>,
    ) -> TokenStream {
        let root_name = roots
            .iter()
            .position(|&r| r == n)
            .map(|i| self.root_names[i].clone());
        let want = root_name.or_else(|| self.cx.names.get(&n).cloned());
        let name = self.fresh(want.as_deref());
        let expr = self.render_op(n, bound);
        stmts.push(quote!(let #name = #expr;));
        bound.insert(n, quote!(#name));
        expr
    }

    fn render(&self, id: Id, bound: &HashMap<Id, TokenStream>) -> TokenStream {
        if let Some(t) = bound.get(&id) {
            return t.clone();
        }
        let t = &self.cx.scalar;
        match self.g.op(id) {
            Op::Const(bits) => {
                let v = f64::from_bits(*bits);
                if v == 0.0 {
                    quote!(#t::ZERO)
                } else if v == 1.0 {
                    quote!(#t::ONE)
                } else {
                    let lit = proc_macro2::Literal::f64_unsuffixed(v.abs());
                    if v < 0.0 {
                        quote!(#t::c(-#lit))
                    } else {
                        quote!(#t::c(#lit))
                    }
                }
            }
            Op::Named(k) => {
                let path = &self.g.named[*k];
                quote!(#t::c(#path as f64))
            }
            Op::Arg(k) => {
                let a = &self.cx.args[*k];
                quote!(#a)
            }
            _ => unreachable!("node {id} used before it was bound"),
        }
    }

    fn render_op(&self, id: Id, bound: &HashMap<Id, TokenStream>) -> TokenStream {
        let r = |x: Id| self.render(x, bound);
        match self.g.op(id).clone() {
            Op::Add(a, b) => {
                let (a, b) = (r(a), r(b));
                quote!(#a + #b)
            }
            Op::Sub(a, b) => {
                let (a, b) = (r(a), r(b));
                quote!(#a - #b)
            }
            Op::Mul(a, b) => {
                let (a, b) = (r(a), r(b));
                quote!(#a * #b)
            }
            Op::Div(a, b) => {
                let (a, b) = (r(a), r(b));
                quote!(#a / #b)
            }
            Op::Neg(a) => {
                let a = r(a);
                quote!(-#a)
            }
            Op::Powi(a, n) => {
                let a = r(a);
                let n = proc_macro2::Literal::i32_unsuffixed(n);
                quote!(#a.powi(#n))
            }
            Op::Powf(a, c) => {
                let (a, c) = (r(a), r(c));
                quote!(#a.powf(#c))
            }
            Op::Call(Func::Sign, a) => {
                let a = r(a);
                let rt = &self.cx.rt;
                quote!(#rt::sign(#a))
            }
            Op::Call(f, a) => {
                let a = r(a);
                let m = format_ident!("{}", f.method());
                quote!(#a.#m())
            }
            op => unreachable!("not a value node: {op:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates `id` at the arguments `args` (named constants are not supported here).
    fn eval(g: &Graph, id: Id, args: &[f64]) -> f64 {
        match g.op(id).clone() {
            Op::Const(b) => f64::from_bits(b),
            Op::Named(_) => panic!("named"),
            Op::Arg(k) => args[k],
            Op::Add(a, b) => eval(g, a, args) + eval(g, b, args),
            Op::Sub(a, b) => eval(g, a, args) - eval(g, b, args),
            Op::Mul(a, b) => eval(g, a, args) * eval(g, b, args),
            Op::Div(a, b) => eval(g, a, args) / eval(g, b, args),
            Op::Neg(a) => -eval(g, a, args),
            Op::Powi(a, n) => eval(g, a, args).powi(n),
            Op::Powf(a, c) => eval(g, a, args).powf(eval(g, c, args)),
            Op::Call(f, a) => f.eval(eval(g, a, args)),
            Op::Cmp(..) => panic!("cmp"),
            Op::Select(c, a, b) => {
                let Op::Cmp(op, x, y) = g.op(c).clone() else {
                    panic!()
                };
                if op.eval(eval(g, x, args), eval(g, y, args)) {
                    eval(g, a, args)
                } else {
                    eval(g, b, args)
                }
            }
        }
    }

    fn fd(g: &Graph, id: Id, x: f64) -> f64 {
        let h = 1e-6 * (1.0 + x.abs());
        (eval(g, id, &[x + h]) - eval(g, id, &[x - h])) / (2.0 * h)
    }

    #[test]
    fn simplifier_rules() {
        let mut g = Graph::new();
        let x = g.arg(0);
        let (zero, one, two, three) = (
            g.constant(0.0),
            g.constant(1.0),
            g.constant(2.0),
            g.constant(3.0),
        );
        assert_eq!(g.add(x, zero), x);
        assert_eq!(g.add(zero, x), x);
        assert_eq!(g.sub(x, zero), x);
        assert_eq!(g.mul(x, one), x);
        assert_eq!(g.mul(one, x), x);
        assert_eq!(g.mul(x, zero), zero);
        assert_eq!(g.div(x, one), x);
        assert_eq!(g.sub(x, x), zero);
        let nx = g.neg(x);
        assert_eq!(g.neg(nx), x);
        assert_eq!(g.add(two, three), g.constant(5.0));
        assert_eq!(g.mul(two, three), g.constant(6.0));
        assert_eq!(g.powi(x, 1), x);
        assert_eq!(g.powi(x, 0), one);
        // Constants gather: 2 * (3 * x) = 6 * x.
        let tx = g.mul(three, x);
        let six_x = g.mul(two, tx);
        let six = g.constant(6.0);
        assert_eq!(six_x, g.mul(x, six));
        // Commutative operations are shared whichever way round they were written.
        let e = g.call(Func::Exp, x);
        assert_eq!(g.mul(x, e), g.mul(e, x));
        assert_eq!(g.add(x, e), g.add(e, x));
        // Hash-consing: the same expression is the same node.
        let a = g.call(Func::Sin, x);
        assert_eq!(a, g.call(Func::Sin, x));
        // Folding never makes a non-finite constant.
        let d = g.div(one, zero);
        assert!(matches!(g.op(d), Op::Div(..)));
        // x - (-y) = x + y; -x * -y = x * y
        let ne = g.neg(e);
        assert_eq!(g.sub(x, ne), g.add(x, e));
        assert_eq!(g.mul(nx, ne), g.mul(x, e));
        // Selects with equal branches disappear; constant conditions fold.
        let c = g.cmp(Cmp::Lt, x, zero);
        assert_eq!(g.select(c, e, e), e);
        let k = g.cmp(Cmp::Lt, one, two);
        assert_eq!(k, Err(true));
    }

    #[test]
    fn derivative_rules_match_finite_differences() {
        type Body = Box<dyn Fn(&mut Graph, Id) -> Id>;
        let bodies: Vec<Body> = vec![
            Box::new(|g, x| {
                let a = g.call(Func::Abs, x);
                let one = g.constant(1.0);
                let d = g.add(one, a);
                g.div(x, d)
            }),
            Box::new(|g, x| {
                let c = g.constant(0.7);
                let s = g.mul(c, x);
                let t = g.call(Func::Tanh, s);
                let k = g_const(g, 1.7159);
                g.mul(k, t)
            }),
            Box::new(|g, x| {
                let s = g.call(Func::Sinh, x);
                let c = g.call(Func::Cosh, x);
                let a = g.call(Func::Atan, x);
                let m = g.mul(s, a);
                g.div(m, c)
            }),
            Box::new(|g, x| {
                let sq = g.mul(x, x);
                let one = g.constant(1.0);
                let r = g.add(one, sq);
                let s = g.call(Func::Sqrt, r);
                let l = g.call(Func::Ln, s);
                let p = g.powi(x, 3);
                let e = g.constant(1.5);
                let pf = g.powf(r, e);
                let q = g.add(l, p);
                g.sub(q, pf)
            }),
            Box::new(|g, x| {
                let s = g.call(Func::Sin, x);
                let c = g.call(Func::Cos, x);
                let e = g.call(Func::Exp, s);
                let m = g.mul(e, c);
                let n = g.neg(m);
                g.powi(n, -2)
            }),
            Box::new(|g, x| {
                // if x < 0.5 { x * x } else { x.exp() }
                let h = g.constant(0.5);
                let c = g.cmp(Cmp::Lt, x, h);
                let sq = g.mul(x, x);
                let e = g.call(Func::Exp, x);
                g.select(c, sq, e)
            }),
        ];
        for body in &bodies {
            let mut g = Graph::new();
            let x = g.arg(0);
            let f = body(&mut g, x);
            let d1 = g.diff(f, 0);
            let d2 = g.diff(d1, 0);
            for i in -30..=30 {
                let xv = i as f64 * 0.1 + 0.0137;
                let (v1, v2) = (eval(&g, d1, &[xv]), eval(&g, d2, &[xv]));
                let (f1, f2) = (fd(&g, f, xv), fd(&g, d1, xv));
                let scale = 1.0 + eval(&g, f, &[xv]).abs() + v1.abs() + v2.abs();
                assert!((v1 - f1).abs() < 1e-6 * scale, "f' at {xv}: {v1} vs {f1}");
                assert!((v2 - f2).abs() < 1e-6 * scale, "f'' at {xv}: {v2} vs {f2}");
            }
        }
    }

    fn g_const(g: &mut Graph, v: f64) -> Id {
        g.constant(v)
    }

    #[test]
    fn derivatives_are_shared_and_simplified() {
        let mut g = Graph::new();
        let x = g.arg(0);
        let e = g.call(Func::Exp, x);
        // (e^x)' = e^x and (e^x)'' = e^x: the same node, nothing new.
        assert_eq!(g.diff(e, 0), e);
        let d1 = g.diff(e, 0);
        assert_eq!(g.diff(d1, 0), e);
        // x' = 1, x'' = 0; a constant's derivative is 0.
        let dx = g.diff(x, 0);
        assert!(g.is(dx, 1.0));
        let c = g.constant(3.0);
        let dc = g.diff(c, 0);
        assert!(g.is(dc, 0.0));
        // Derivative with respect to another argument (a loss's target) is 0.
        let t = g.arg(1);
        let m = g.mul(x, t);
        let dm = g.diff(m, 0);
        assert_eq!(dm, t);
        let dt = g.diff(t, 0);
        assert!(g.is(dt, 0.0));
    }

    #[test]
    fn emission_lifts_branches_and_names_locals() {
        let mut g = Graph::new();
        let x = g.arg(0);
        let zero = g.constant(0.0);
        let c = g.cmp(Cmp::Lt, x, zero);
        let e = g.call(Func::Exp, x);
        let one = g.constant(1.0);
        let em1 = g.sub(e, one);
        let f = g.select(c, em1, x);
        let d1 = g.diff(f, 0);
        let d2 = g.diff(d1, 0);
        let args = [format_ident!("x")];
        let mut cx = EmitCx {
            scalar: quote!(T),
            rt: quote!(rt),
            args: &args,
            names: HashMap::new(),
        };
        let body = emit_body(&mut g, &mut cx, &[f, d1, d2], &["f", "df", "d2f"]);
        let s = body.to_string();
        assert!(s.starts_with("if x < T :: ZERO"), "{s}");
        // The `then` block computes e^x once and returns it as both derivatives.
        assert!(s.contains("let df = x . exp () ;"), "{s}");
        assert!(s.contains("(f , df , df)"), "{s}");
        // The `else` block is the identity.
        assert!(s.contains("(x , T :: ONE , T :: ZERO)"), "{s}");
    }
}
