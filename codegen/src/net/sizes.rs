//! The sizes in bytes of a network's storage types, computed from the runtime's layouts
//! (every storage is a `repr(C)` or `repr(transparent)` nest of scalar arrays), so the
//! generated docs can state them. `tests/it/storage_sizes.rs` checks them against
//! `size_of` on the test nets.

use crate::net::ast::{LayerField, Net};
use crate::net::attr::Scalar;

/// Size and alignment of a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lay {
    size: usize,
    align: usize,
}

fn round_up(x: usize, align: usize) -> usize {
    x.div_ceil(align).saturating_mul(align)
}

/// A `repr(C)` struct of `fields` in order.
fn repr_c(fields: &[Lay]) -> Lay {
    let mut size = 0usize;
    let mut align = 1;
    for f in fields {
        size = round_up(size, f.align).saturating_add(f.size);
        align = align.max(f.align);
    }
    Lay {
        size: round_up(size, align),
        align,
    }
}

fn array(x: Lay, n: usize) -> Lay {
    Lay {
        size: x.size.saturating_mul(n),
        align: x.align,
    }
}

/// What the sizes depend on.
struct Cx {
    /// Bytes of a scalar.
    sb: usize,
    batch: usize,
}

impl Cx {
    fn scalars(&self, n: usize) -> Lay {
        Lay {
            size: self.sb.saturating_mul(n),
            align: self.sb,
        }
    }

    fn tape(&self, l: &LayerField) -> Lay {
        self.scalars(
            5usize
                .saturating_mul(l.outputs.value)
                .saturating_mul(self.batch),
        )
    }

    fn dims(&self, l: &LayerField) -> (usize, usize, usize, usize, usize) {
        let (i, o, b) = (l.inputs.value, l.outputs.value, self.batch);
        let i1 = i + usize::from(l.kind.bias());
        let r = b.min(i1);
        (i, o, b, i1, r)
    }

    fn stage(&self, l: &LayerField) -> Lay {
        let (i, o, b, i1, r) = self.dims(l);
        let m = |x: usize, y: usize| x.saturating_mul(y);
        let (bo, bi, ro) = (m(b, o), m(b, i), m(r, o));
        // Ldlt (default repr, every field aligned to at most the scalar): the matrix, the
        // inverse diagonal and subdiagonal, and a `u32` permutation.
        let ldlt_bytes = round_up(
            m(m(ro, ro), self.sb).saturating_add(m(2 * self.sb + 4, ro)),
            self.sb,
        );
        let ldlt = Lay {
            size: ldlt_bytes,
            align: self.sb,
        };
        repr_c(&[
            self.scalars(m(o, i)),
            self.scalars(m(o, b)),
            self.scalars(m(o, b)),
            self.scalars(m(o, b)),
            self.scalars(m(i1, r)),
            self.scalars(m(r, b)),
            self.scalars(m(bo, bo)),
            ldlt,
            self.scalars(m(bi, ro)),
            Lay { size: 1, align: 1 },
        ])
    }

    fn scratch(&self, l: &LayerField) -> Lay {
        let (_, o, b, _, r) = self.dims(l);
        let m = |x: usize, y: usize| x.saturating_mul(y);
        repr_c(&[
            self.scalars(m(o, r)),
            self.scalars(m(o, r)),
            self.scalars(m(o, b)),
            self.scalars(m(o, b)),
        ])
    }

    fn layer(&self, l: &LayerField) -> Lay {
        let (i, o) = (l.inputs.value, l.outputs.value);
        repr_c(&[self.scalars(o.saturating_mul(i)), self.scalars(o)])
    }

    /// A `Cons` list with one element per layer field (arrays for array fields).
    fn list(&self, net: &Net, each: impl Fn(&LayerField) -> Lay) -> Lay {
        let nil = Lay { size: 0, align: 1 };
        net.layers.iter().rev().fold(nil, |rest, l| {
            let one = each(l);
            let head = match l.array {
                Some(n) => array(one, n.value),
                None => one,
            };
            repr_c(&[head, rest])
        })
    }
}

fn cx(net: &Net) -> Cx {
    let sb = match net.scalar {
        Scalar::F32 => 4,
        Scalar::F64 => 8,
    };
    Cx {
        sb,
        batch: net.batch,
    }
}

/// Bytes of `<Net>Workspace`.
pub fn workspace(net: &Net) -> usize {
    let c = cx(net);
    c.list(net, |l| c.tape(l)).size
}

/// Bytes of `<Net>Curvature`.
pub fn curvature(net: &Net) -> usize {
    let c = cx(net);
    let n = net.n_params();
    repr_c(&[
        c.list(net, |l| c.stage(l)),
        c.list(net, |l| c.scratch(l)),
        c.scalars(n),
        c.scalars(n),
        Lay { size: 8, align: 8 },
        Lay { size: 1, align: 1 },
    ])
    .size
}

/// Bytes of `<Net>Ggn` (the Woodbury storage).
pub fn woodbury(net: &Net) -> usize {
    let c = cx(net);
    let (i, o, b) = (net.layers[0].inputs.value, net.loss.width.value, net.batch);
    let m = o.saturating_mul(b);
    let n = net.n_params();
    repr_c(&[
        c.list(net, |l| c.layer(l)),
        c.list(net, |l| c.tape(l)),
        c.scalars(i.saturating_mul(b)),
        array(c.scalars(o.saturating_mul(o)), b),
        c.scalars(m.saturating_mul(m)),
        c.scalars(m),
        c.scalars(m.saturating_mul(m)),
        c.scalars(n),
        c.scalars(n),
        Lay { size: 8, align: 8 },
        Lay { size: 8, align: 8 },
        Lay { size: 8, align: 8 },
        Lay { size: 1, align: 1 },
        Lay { size: 1, align: 1 },
        Lay { size: 1, align: 1 },
        Lay { size: 1, align: 1 },
    ])
    .size
}

/// A byte count for docs: `10088 bytes (9.9 KiB)`.
pub fn human(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} bytes")
    } else if b < KIB * KIB {
        format!("{bytes} bytes ({:.1} KiB)", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{bytes} bytes ({:.1} MiB)", b / (KIB * KIB))
    } else {
        format!("{bytes} bytes ({:.1} GiB)", b / (KIB * KIB * KIB))
    }
}
